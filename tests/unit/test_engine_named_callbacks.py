"""A callback's caller-chosen name (`config.callback_id`): POST /runs/{id}/callbacks/{callback_id}."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from statemachine.compiler import validate_workflow
from tests.unit.test_engine_semantics import drive, settle, start

NAMED = """
workflow:
  metadata: {id: named}
  tasks:
    - {id: hook, type: callback, config: {timeout: 1h, callback_id: "order-${inputs.order}"}}
    - {id: use, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['paid']"}}
  outputs:
    mappings: {paid: "${tasks.use.output}"}
"""


def test_a_callback_is_completed_by_its_name_once(local, clock):
    run_id = start(local, NAMED, {"order": 7})
    view = settle(local, run_id)
    assert view["callbacks"][0]["callback_id"] == "order-7"
    with pytest.raises(LinkError) as unknown:
        local.engine.submit_named_callback(run_id, "order-8", {"paid": True})
    assert unknown.value.status == 404
    answer = local.engine.submit_named_callback(run_id, "order-7", {"paid": 12.5})
    assert answer == {"status": "accepted", "run_id": run_id, "task_id": "hook"}
    with pytest.raises(LinkError) as again:  # no longer waiting: nothing by that name
        local.engine.submit_named_callback(run_id, "order-7", {"paid": 1})
    assert again.value.status == 404
    assert drive(local, run_id, clock)["outputs"] == {"paid": 12.5}


def test_the_name_belongs_to_its_run_and_two_waiting_callbacks_with_one_name_are_refused(local, clock):
    other = start(local, NAMED, {"order": 7})
    settle(local, other)
    run_id = start(local, """
        workflow:
          metadata: {id: twins}
          tasks:
            - {id: a, type: callback, config: {callback_id: same}}
            - {id: b, type: callback, config: {callback_id: same}}
        """)
    settle(local, run_id)
    with pytest.raises(LinkError) as wrong_run:
        local.engine.submit_named_callback(run_id, "order-7", {})
    assert wrong_run.value.status == 404
    with pytest.raises(LinkError) as twins:
        local.engine.submit_named_callback(run_id, "same", {})
    assert twins.value.status == 409 and "(a, b)" in twins.value.message


def test_a_name_that_cannot_be_a_path_segment_is_refused_when_validated_or_when_it_is_computed(local, clock):
    bad = NAMED.replace('"order-${inputs.order}"', '"order/7"')
    assert any("callback_id 'order/7' must be" in d.message for d in validate_workflow(bad, "w.yaml"))
    view = drive(local, start(local, NAMED, {"order": "7/../x"}), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["hook"]["error"]["type"] == "InvalidConfig"


EVENTS = """
workflow:
  metadata: {id: events}
  tasks:
    - {id: paid, type: wait, config: {event: payment, timeout: 1h}}
    - {id: also, type: wait, config: {event: payment}}
    - {id: shipped, type: wait, config: {event: "ship-${inputs.order}"}}
    - {id: use, type: python, depends_on: [paid, also, shipped],
       config: {code: "result = [tasks['paid']['output']['data'], tasks['shipped']['output']['event']]"}}
  outputs:
    mappings: {seen: "${tasks.use.output}"}
"""


def test_an_event_completes_every_task_waiting_for_it_once(local, clock):
    run_id = start(local, EVENTS, {"order": 3})
    view = settle(local, run_id)
    assert sorted((c["task_id"], c["event"]) for c in view["callbacks"]) == [
        ("also", "payment"), ("paid", "payment"), ("shipped", "ship-3")]
    answer = local.engine.send_event(run_id, "payment", {"amount": 10})
    assert answer == {"status": "accepted", "run_id": run_id, "event": "payment", "task_ids": ["also", "paid"]}
    with pytest.raises(LinkError) as again:  # a duplicate: nothing waits for it any more
        local.engine.send_event(run_id, "payment", {"amount": 99})
    assert again.value.status == 404
    assert local.engine.send_event(run_id, "ship-3", None)["task_ids"] == ["shipped"]
    view = drive(local, run_id, clock)
    assert view["outputs"] == {"seen": [{"amount": 10}, "ship-3"]}
    assert view["tasks"]["also"]["output"]["data"] == {"amount": 10}


def test_an_event_that_does_not_come_in_time_fails_its_wait(local, clock):
    view = drive(local, start(local, EVENTS, {"order": 3}), clock)  # the others have no timeout: they wait on
    assert view["tasks"]["paid"]["status"] == "FAILED"
    assert view["tasks"]["paid"]["error"] == {"type": "EventTimeout", "message": "no event 'payment' for task 'paid'"}


def test_an_event_wait_is_refused_with_a_time_too_or_a_timeout_without_an_event():
    both = EVENTS.replace("{event: payment, timeout: 1h}", "{event: payment, duration: 1h}")
    assert any("not both" in d.message for d in validate_workflow(both, "w.yaml"))
    lonely = EVENTS.replace("{event: payment, timeout: 1h}", "{duration: 1m, timeout: 1h}")
    assert any("has no 'event'" in d.message for d in validate_workflow(lonely, "w.yaml"))
    bad = EVENTS.replace("{event: payment, timeout: 1h}", '{event: "pay ment"}')
    assert any("event 'pay ment' must be" in d.message for d in validate_workflow(bad, "w.yaml"))
