"""POST /runs/{id}/rewind of a run still moving, through the API Lambda on the embedded stack (DynamoDB, SQS and
the template's IAM statements on moto): 202 where it was a 409, and the run waits again at the new epoch."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from infra.wiring import get_engine, get_history
from loopline.embedded.runtime import LocalRuntime
from tests.component.test_handlers import api
from tests.e2e.test_invariants import finish, start, view
from tests.e2e.test_rewind import HOOKED, rewind_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def callback_token(runtime, run_id: str) -> str:
    assert runtime.run_until(lambda: view(runtime, run_id)["callbacks"], 30), view(runtime, run_id)
    return view(runtime, run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]


def test_a_running_run_is_rewound_with_a_202_and_its_old_callback_link_is_refused(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, HOOKED)
        old = callback_token(runtime, run_id)  # RUNNING, hook waits for its callback
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch", "reason": "fetch read stale data"}))
        assert status == 202, body
        assert body == {"run_id": run_id, "status": "RUNNING", "changed": True, "rewind": 1, "to": "fetch",
                        "discarded": ["fetch", "hook", "total"], "compensating": []}
        assert runtime.run_until(lambda: view(runtime, run_id)["redrives"] == 1
                                 and view(runtime, run_id)["callbacks"], 30), view(runtime, run_id)
        with runtime.lock, pytest.raises(LinkError):  # the wait was discarded: its link is void
            get_engine().submit_callback(old, {"factor": 9})
        with runtime.lock:
            get_engine().submit_callback(callback_token(runtime, run_id), {"factor": 2})
        done = finish(runtime, run_id)
        assert done["status"] == "COMPLETED" and done["tasks"]["total"]["output"] == 42 and done["redrives"] == 1
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch", "compensate": True}))
        assert status == 202 and body["status"] == "COMPLETED"  # an ended run may still compensate first
    finally:
        runtime.stop()


def test_a_moving_run_that_cannot_be_rewound_is_a_409_with_the_reason(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, HOOKED)
        callback_token(runtime, run_id)
        status, body = api(runtime, rewind_event(run_id, {"to": "total"}))
        assert status == 409 and "'total' is PENDING" in body["error"], body
    finally:
        runtime.stop()


# HOOKED with its fetch undone by a compensation (a moving run's rewind may run it first).
UNDONE = """
workflow:
  metadata: {id: hooked}
  tasks:
    - {id: fetch, type: python, config: {code: "result = 21"}, compensation: {task_id: undo_fetch}}
    - {id: undo_fetch, type: python, depends_on: [fetch], config: {code: "result = -tasks['fetch']['output']"}}
    - {id: hook, type: callback, depends_on: [fetch], config: {timeout: 1h}}
    - id: total
      type: python
      depends_on: [hook]
      config: {code: "result = tasks['fetch']['output'] * tasks['hook']['output']['factor']"}
"""


def test_a_running_run_rewound_with_compensate_runs_them_first_then_waits_again(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, UNDONE)
        old = callback_token(runtime, run_id)
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch", "compensate": True, "reason": "stale"}))
        assert status == 202 and body["status"] == "RUNNING" and body["compensating"] == ["fetch"], body
        assert runtime.run_until(lambda: view(runtime, run_id)["redrives"] == 1
                                 and view(runtime, run_id)["callbacks"], 30), view(runtime, run_id)
        with runtime.lock, pytest.raises(LinkError):
            get_engine().submit_callback(old, {"factor": 9})
        with runtime.lock:
            get_engine().submit_callback(callback_token(runtime, run_id), {"factor": 2})
            undo = get_engine().store.list_tasks(run_id)["undo_fetch@fetch"]
        assert (undo.status, undo.redrive) == ("PENDING", 1)  # it ran, then was reset with the fetch it undid
        done = finish(runtime, run_id)
        assert done["status"] == "COMPLETED" and done["tasks"]["total"]["output"] == 42 and done["redrives"] == 1

        def history() -> list:
            with runtime.lock:
                return get_history().of_run(run_id, limit=500).items

        # The history is read off the table's stream by a function of its own, in the order of the writes: it may
        # come after the run's end, and once the run's end is in it, so is everything before.
        assert runtime.run_until(lambda: any(e.kind == "run" and e.status == "COMPLETED" for e in history()), 10)
        entries = history()
        assert [(e.item, e.status) for e in entries if e.item.startswith("undo_")] == [
            ("undo_fetch@fetch", "RUNNING"), ("undo_fetch@fetch", "COMPLETED"), ("undo_fetch@fetch", "PENDING")]
        assert [(e.previous, e.status) for e in entries if e.kind == "run" and "rewind 1" in e.reason] == [
            ("RUNNING", "PAUSED"), ("PAUSED", "RUNNING")]
    finally:
        runtime.stop()


def test_compensate_is_a_409_while_a_discarded_task_that_declares_a_compensation_waits(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        text = UNDONE.replace("config: {timeout: 1h}}", "config: {timeout: 1h}, compensation: {task_id: undo_fetch}}")
        run_id = start(runtime, text)
        callback_token(runtime, run_id)
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch", "compensate": True}))
        assert status == 409 and "hook declares a compensation and is still doing its work (WAITING)" \
            in body["error"], body
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch"}))
        assert status == 202 and body["compensating"] == []  # without it, as any moving run
    finally:
        runtime.stop()
