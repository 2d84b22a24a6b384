"""POST /runs/{id}/rewind of a run still moving, through the API Lambda on the embedded stack (DynamoDB, SQS and
the template's IAM statements on moto): 202 where it was a 409, and the run waits again at the new epoch."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from infra.wiring import get_engine
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
        status, body = api(runtime, rewind_event(run_id, {"to": "fetch", "compensate": True}))
        assert status == 409 and "'compensate' is for a run that ended" in body["error"], body
        status, body = api(runtime, rewind_event(run_id, {"to": "total"}))
        assert status == 409 and "'total' is PENDING" in body["error"], body
    finally:
        runtime.stop()
