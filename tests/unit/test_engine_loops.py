"""Loops (dsl.md): for_each, while, do_while, break_on, max_iterations, parallel with max_concurrent."""

from __future__ import annotations

import pytest

from tests.unit.test_engine_semantics import drive, settle, start

FOR_EACH = """
workflow:
  metadata: {id: loops}
  variables: [{name: total, default: 0}]
  inputs:
    schema: {type: object, properties: {items: {type: array, default: [3, 1, 4]}}}
  tasks:
    - {id: after, type: python, depends_on: [each], config: {code: "result = tasks['each']['output']"}}
  control_flow:
    loops:
      - id: each
        items: "${inputs.items}"
        iterator: n
        %(extra)s
        tasks:
          - id: square
            type: python
            config: {code: "result = n * n + loop['index']"}
          - id: add
            type: python
            depends_on: [square]
            config: {code: "result = total + tasks['square']['output']"}
            outputs:
              - {name: total, value: "${response}", export: true}
              - {name: item, value: "${loop.item}"}
"""


def loop(extra="", **inputs):
    return FOR_EACH % {"extra": extra}, inputs


def test_for_each_runs_in_order_with_exports_and_outputs_a_list(local, clock):
    text, inputs = loop()
    view = drive(local, start(local, text, inputs), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["each"]["output"] == [{"total": 9, "item": 3}, {"total": 11, "item": 1},
                                               {"total": 29, "item": 4}]
    assert view["tasks"]["after"]["output"] == view["tasks"]["each"]["output"]
    # a body task shows its last iteration
    assert view["tasks"]["square"]["output"] == 18 and view["tasks"]["add"]["output"]["item"] == 4


def test_an_empty_list_completes_with_an_empty_list(local, clock):
    text, _ = loop()
    view = drive(local, start(local, text, {"items": []}), clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["each"]["output"] == []
    assert view["tasks"]["square"]["status"] == "PENDING"


def test_break_on_stops_after_the_iteration(local, clock):
    text, _ = loop('break_on: "${variables.total > 10}"')
    view = drive(local, start(local, text, {"items": [3, 1, 4, 1, 5]}), clock)
    assert [o["total"] for o in view["tasks"]["each"]["output"]] == [9, 11]


def test_more_items_than_max_iterations_fails_naming_it(local, clock):
    text, _ = loop("max_iterations: 2")
    view = drive(local, start(local, text, {"items": [1, 2, 3]}), clock)
    assert view["status"] == "FAILED"
    error = view["tasks"]["each"]["error"]
    assert error["type"] == "MaxIterationsExceeded" and "max_iterations" in error["message"]


def test_items_that_are_not_a_list_fail_the_loop(local, clock):
    text = FOR_EACH.replace('"${inputs.items}"', '"${inputs}"') % {"extra": ""}
    view = drive(local, start(local, text), clock)
    assert view["tasks"]["each"]["error"]["type"] == "LoopItemsError"
    assert "list" in view["tasks"]["each"]["error"]["message"]


def test_a_failing_iteration_fails_the_loop(local, clock):
    text = FOR_EACH.replace("result = n * n + loop['index']",
                            "result = 1 / (n - 1)") % {"extra": ""}
    view = drive(local, start(local, text, {"items": [3, 1, 4]}), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["each"]["error"]["type"] == "ZeroDivisionError"
    assert "iteration 1" in view["tasks"]["each"]["error"]["message"]
    assert view["tasks"]["after"]["status"] == "CANCELLED"


WHILE = """
workflow:
  metadata: {id: counting}
  variables: [{name: count, default: %(start)s}]
  control_flow:
    loops:
      - id: count_up
        type: %(kind)s
        condition: "${variables.count < 3}"
        max_iterations: %(limit)s
        tasks:
          - id: step
            type: python
            config: {code: "result = count + 1"}
            outputs: [{name: count, value: "${response}", export: true}]
"""


@pytest.mark.parametrize("kind, begin, expected", [
    ("while", 0, [{"count": 1}, {"count": 2}, {"count": 3}]),
    ("while", 5, []),  # the condition is checked before the first iteration
    ("do_while", 5, [{"count": 6}]),  # the first iteration always runs
])
def test_while_and_do_while(local, clock, kind, begin, expected):
    view = drive(local, start(local, WHILE % {"kind": kind, "start": begin, "limit": 10}), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["count_up"]["output"] == expected


def test_a_while_loop_still_true_after_max_iterations_fails(local, clock):
    view = drive(local, start(local, WHILE % {"kind": "while", "start": 0, "limit": 2}), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["count_up"]["error"]["type"] == "MaxIterationsExceeded"
    assert "max_iterations (2)" in view["tasks"]["count_up"]["error"]["message"]


def test_parallel_iterations_keep_their_order_in_the_output(local, clock, actions):
    text = """
    workflow:
      metadata: {id: par_loop}
      control_flow:
        loops:
          - id: each
            items: [5, 6, 7, 8, 9]
            parallel: true
            max_concurrent: 2
            tasks:
              - {id: twice, type: python, config: {code: "result = item * 2"}}
    """
    view = drive(local, start(local, text), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["each"]["output"] == [10, 12, 14, 16, 18]
    assert actions.count("twice") == 5


def test_parallel_iterations_are_bounded_by_max_concurrent(local, clock):
    text = """
    workflow:
      metadata: {id: window}
      control_flow:
        loops:
          - id: each
            items: [1, 2, 3, 4]
            parallel: true
            max_concurrent: 2
            tasks:
              - {id: hold, type: callback}
    """
    run_id = start(local, text)
    while local.pump_once():
        pass
    assert len(local.engine.describe_run(run_id)["callbacks"]) == 2  # two iterations at a time
    token = local.engine.describe_run(run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]
    local.engine.submit_callback(token, {"n": 1})
    while local.pump_once():
        pass
    assert len(local.engine.describe_run(run_id)["callbacks"]) == 2  # the next one started


def test_a_body_task_cannot_be_depended_on_from_outside(local):
    from statemachine.compiler import validate_workflow

    text = FOR_EACH.replace("depends_on: [each]", "depends_on: [add]") % {"extra": ""}
    messages = [str(d) for d in validate_workflow(text, "l.yaml")]
    assert any("runs inside loop 'each': depend on the loop" in m for m in messages), messages


def test_a_body_condition_and_when(local, clock):
    text = """
    workflow:
      metadata: {id: picky}
      control_flow:
        loops:
          - id: each
            items: [1, 2, 3, 4]
            tasks:
              - {id: even, type: python, when: "${item % 2 == 0}", config: {code: "result = item"}}
    """
    view = drive(local, start(local, text), clock)
    # one output per iteration, aligned with the items: a skipped body gives null
    assert view["tasks"]["each"]["output"] == [None, 2, None, 4]


CHUNKED = """
workflow:
  metadata: {id: chunked}
  control_flow:
    loops:
      - id: each
        items: "${inputs.items}"
        max_iterations: 1000
        parallel: %(parallel)s
        max_concurrent: 10
        tasks:
          - id: echo
            type: wait
            config: {duration: 0s}
            outputs: [{name: result, value: "${loop.item}"}]
"""


@pytest.mark.parametrize("parallel", ["true", "false"])
@pytest.mark.parametrize("size", [100, 150])
def test_the_next_item_is_read_from_its_chunk_and_no_chunk_past_the_list_is_read(local, clock, parallel, size):
    """Items are kept 100 to a chunk (keys.CHUNK): the iterations that cross into the next chunk read it
    only if the list goes on, so a list of 100 never asks for a second chunk."""
    reads: list[list[str]] = []
    real = local.store.load
    local.store.load = lambda run, ids: reads.append(list(ids)) or real(run, ids)
    items = [f"item {i}" for i in range(size)]
    view = drive(local, start(local, CHUNKED % {"parallel": parallel}, {"items": items}), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["each"]["output"] == [{"result": item} for item in items]
    asked = {key for ids in reads for key in ids if ":items:" in key}
    assert asked <= {f"each:items:{k}" for k in range((size + 99) // 100)}, asked


ONE_TASK = """
workflow:
  metadata: {id: one_task}
  control_flow:
    loops:
      - id: each
        items: [5, 6, 7, 8, 9]
        parallel: %(parallel)s
        max_concurrent: 2
        tasks:
          - {id: twice, type: python, config: {code: "result = item * 2 + loop['index']"}}
"""


@pytest.mark.parametrize("parallel", ["true", "false"])
def test_a_for_each_of_one_task_keeps_each_iteration_in_its_task_s_item(local, clock, parallel):
    """No iteration item is written (iterations.py): the task's claim keeps the iteration's item, its end
    is the iteration's; the loop's output and its iterations' listing read them from the task's items."""
    run_id = start(local, ONE_TASK % {"parallel": parallel})
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["each"]["output"] == [10, 13, 16, 19, 22]
    items = local.store.list_tasks(run_id)
    assert not [key for key in items if key.startswith("each.")]
    assert [items[f"twice@each.{i}"].role_ctx["item"] for i in range(5)] == [5, 6, 7, 8, 9]
    assert items["each"].loop_state == {"total": 5, "folded": True}
    page = local.engine.listing.iterations(run_id, "each", 1, 3)
    assert [(i["index"], i["status"], i["output"], i["tasks"]) for i in page["iterations"]] == [
        (1, "COMPLETED", 13, {"twice": "COMPLETED"}), (2, "COMPLETED", 16, {"twice": "COMPLETED"}),
        (3, "COMPLETED", 19, {"twice": "COMPLETED"})]
    assert page["next"] == 4 and all(i["started_at"] and i["ended_at"] for i in page["iterations"])


def test_a_folded_iteration_s_failure_fails_the_loop_and_its_listing_shows_each_iteration_as_it_stands(local, clock):
    failing = ONE_TASK.replace("[5, 6, 7, 8, 9]", "[5, 0, 7]").replace(
        "result = item * 2 + loop['index']", "result = 10 // item") % {"parallel": "false"}
    run_id = start(local, failing)
    view = drive(local, run_id, clock)
    assert view["status"] == "FAILED" and view["tasks"]["each"]["error"]["type"] == "ZeroDivisionError"
    shown = local.engine.listing.iterations(run_id, "each", 0, 5)["iterations"]
    assert [(i["status"], i["output"]) for i in shown] == [("COMPLETED", 2), ("FAILED", None), ("PENDING", None)]
    assert shown[1]["error"]["type"] == "ZeroDivisionError" and shown[1]["error"]["task_id"] == "twice"
    held = start(local, ONE_TASK.replace("{id: twice, type: python, config: {code: \"result = item * 2 + "
                                         "loop['index']\"}}", "{id: twice, type: callback}") % {"parallel": "true"})
    while local.pump_once():
        pass
    shown = local.engine.listing.iterations(held, "each", 0, 5)["iterations"]
    assert [i["status"] for i in shown] == ["RUNNING", "RUNNING", "PENDING", "PENDING", "PENDING"]
    assert shown[0]["tasks"] == {"twice": "WAITING"} and shown[2]["tasks"] == {"twice": "PENDING"}


def test_a_loop_of_two_tasks_still_keeps_an_item_per_iteration(local, clock):
    text, _ = loop()
    run_id = start(local, text)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    items = local.store.list_tasks(run_id)
    assert {key for key in items if key.startswith("each.")} == {"each.0", "each.1", "each.2"}
    assert "folded" not in items["each"].loop_state


def test_a_loop_an_earlier_release_started_with_iteration_items_ends_with_them(local, clock):
    """A one-task for_each whose loop item has no ``folded`` mark was started by a release that wrote an
    item per iteration: it goes on writing them, and its body task reads its item from its iteration's."""
    from infra.ports import TaskChange
    from statemachine.messages import Exec, encode

    text = """
    workflow:
      metadata: {id: upgraded}
      tasks:
        - {id: gate, type: callback}
      control_flow:
        loops:
          - id: each
            depends_on: [gate]
            items: [5, 6, 7]
            tasks:
              - {id: twice, type: python, config: {code: "result = item * 2 + loop['index']"}}
    """
    run_id = start(local, text)
    settle(local, run_id)
    plan_hash = local.store.get_run(run_id).plan_hash
    # What that release had written when the loop started: the loop waiting, its list, its first iteration.
    for key, status, fields in [
            ("each", "WAITING", {"waiting_for": "loop", "loop_state": {"total": 3}, "attempt": 1}),
            ("each:items:0", "COMPLETED", {"output": [5, 6, 7]}),
            ("each.0", "RUNNING", {"attempt": 1, "role_ctx": {"role": "iteration", "loop": "each", "index": 0,
                                                              "item": 5}})]:
        local.store.change_task(run_id, key, TaskChange(status=status, from_status=(None,), set=fields))
    local.engine.handle(encode(Exec(run_id, plan_hash, "twice", 1, key="twice@each.0",
                                    ctx={"role": "iteration", "loop": "each", "index": 0})))
    settle(local, run_id)
    items = local.store.list_tasks(run_id)
    assert [items[f"each.{i}"].output for i in range(3)] == [10, 13, 16]
    assert items["each"].status == "COMPLETED" and items["each"].output == [10, 13, 16]


def test_a_folded_iteration_parked_by_a_pause_is_listed_running_and_resumes_with_its_item(local, clock):
    run_id = start(local, ONE_TASK % {"parallel": "true"})
    while local.engine.describe_run(run_id)["tasks"]["each"]["status"] != "WAITING":
        assert local.pump_once()
    local.engine.pause_run(run_id)
    settle(local, run_id)
    items = local.store.list_tasks(run_id)
    parked = [key for key, rec in items.items() if rec.parked]
    assert parked and all(items[key].role_ctx["item"] == 5 + int(key.rsplit(".", 1)[1]) for key in parked)
    shown = local.engine.listing.iterations(run_id, "each", 0, 5)["iterations"]
    assert {shown[int(key.rsplit(".", 1)[1])]["status"] for key in parked} == {"RUNNING"}
    local.engine.resume_run(run_id)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["each"]["output"] == [10, 13, 16, 19, 22]
