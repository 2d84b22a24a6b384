"""Rewind into the body of a loop whose iterations run in parallel, end to end: through the API Lambda on the
embedded default (moto + the local runtime), where the loop's end is counted on DynamoDB."""

from __future__ import annotations

import pytest

from bench.crash_points import WORKFLOWS
from infra.wiring import get_engine
from loopline.embedded.runtime import LocalRuntime
from tests.component.test_handlers import api
from tests.e2e.test_invariants import finish, start, view
from tests.e2e.test_rewind import rewind_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# The harnesses' workflow: three iterations two at a time (note, then inc), then a task reading the loop's output.
PARALLEL = WORKFLOWS["rewind_parallel_loop"]
OUTPUTS = {"after": [10, 21, 32], "each": [10, 21, 32]}


def test_rewind_into_the_first_window_of_a_parallel_loop_through_the_api(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, PARALLEL)
        assert finish(runtime, run_id)["outputs"] == OUTPUTS
        status, body = api(runtime, rewind_event(run_id, {"to": "inc", "iteration": 0}))
        assert status == 202 and body == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1,
                                          "to": "inc", "iteration": 0, "discarded": ["after", "inc@each.0"],
                                          "compensating": []}
        assert runtime.run_until(lambda: (view(runtime, run_id)["redrives"] == 1
                                          and view(runtime, run_id)["status"] == "COMPLETED"), 30)
        assert view(runtime, run_id)["outputs"] == OUTPUTS
        # Only iteration 0 was reopened: its siblings' items are of the first epoch still.
        with runtime.lock:
            items = get_engine().store.list_tasks(run_id)
        assert [(items[f"each.{i}"].status, items[f"each.{i}"].redrive) for i in range(3)] == [
            ("COMPLETED", 1), ("COMPLETED", 0), ("COMPLETED", 0)]
    finally:
        runtime.stop()
