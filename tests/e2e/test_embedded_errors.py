"""Catch, compensation, finally, workflow timeout and parallel blocks on the embedded stack."""

from __future__ import annotations

from tests.e2e.test_invariants import finish, start
from tests.unit.test_engine_errors import CATCH, SAGA


def test_catch_on_the_embedded_stack(runtime):
    done = finish(runtime, start(runtime, CATCH))
    assert done["status"] == "COMPLETED"
    assert done["tasks"]["use"]["output"] == {"cached": True, "why": "ConnectionError: api down"}


def test_saga_and_finally_on_the_embedded_stack(runtime, actions):
    done = finish(runtime, start(runtime, SAGA))
    assert done["status"] == "FAILED"
    assert actions == ["flight", "hotel", "car", "cancel_hotel", "cancel_flight", "log"]


def test_workflow_timeout_on_the_embedded_stack(runtime, clock):
    run_id = start(runtime, """
    workflow:
      metadata: {id: slow}
      config: {timeout: 1h}
      tasks:
        - {id: hold, type: callback}
    """)
    assert runtime.run_until(lambda: False, timeout=1) is False
    clock.advance(3601)
    done = finish(runtime, run_id)
    assert done["status"] == "FAILED" and done["error"]["type"] == "WorkflowTimeout"
    assert done["tasks"]["hold"]["status"] == "CANCELLED"


def test_parallel_blocks_on_the_embedded_stack(runtime, clock):
    from tests.unit.test_engine_parallel import block

    merged = finish(runtime, start(runtime, block("merge", limit=2)))
    assert merged["status"] == "COMPLETED" and merged["tasks"]["fan"]["output"]["total"]["data"] == 106
    text = block("first").replace('raise ValueError(\'bad branch\')', "result = 1").replace(
        "- {id: b1, type: python, config: {code: \"result = 1\"}}",
        "- {id: b1, type: wait, config: {duration: 1d}}")
    raced = finish(runtime, start(runtime, text))
    assert raced["status"] == "COMPLETED" and raced["tasks"]["b1"]["status"] == "CANCELLED"
