"""Catch, compensation, finally, workflow timeout, parallel blocks and loops on the embedded stack."""

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


def test_loops_on_the_embedded_stack(runtime):
    from tests.unit.test_engine_loops import FOR_EACH, WHILE

    done = finish(runtime, start(runtime, FOR_EACH % {"extra": "parallel: true\n        max_concurrent: 2"},
                                 {"items": [3, 1, 4]}))
    assert done["status"] == "COMPLETED" and [o["item"] for o in done["tasks"]["each"]["output"]] == [3, 1, 4]
    counted = finish(runtime, start(runtime, WHILE % {"kind": "while", "start": 0, "limit": 10}))
    assert counted["tasks"]["count_up"]["output"] == [{"count": 1}, {"count": 2}, {"count": 3}]
