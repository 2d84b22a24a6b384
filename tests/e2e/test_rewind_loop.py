"""Rewind into a loop's body end to end: through the API Lambda on the embedded default (moto + the local
runtime), and through a running `loopline dev` with the CLI and the run's history."""

from __future__ import annotations

import json

import pytest

from bench.crash_points import WORKFLOWS
from infra.wiring import get_history
from loopline.embedded.runtime import LocalRuntime
from statemachine.history import AuditAction
from tests.component.test_handlers import api
from tests.e2e.test_dev_server import LOOPLINE, dev_server, get_json, request, wait_for
from tests.e2e.test_invariants import finish, start, view
from tests.e2e.test_rewind import cli, rewind_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# The harnesses' workflow: a do_while counting n up to 3 (note, then inc, which exports it), then a task
# reading it (with a compensation, which these rewinds do not ask for).
COUNTING = WORKFLOWS["rewind_loop"]


def test_rewind_into_a_loops_body_through_the_api(aws, clock):
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, COUNTING)
        assert finish(runtime, run_id)["outputs"] == {"after": 30, "count": [{"n": 1}, {"n": 2}, {"n": 3}]}
        for body, code, words in [
                ({"to": "inc", "iteration": "1"}, 400, "'iteration' must be the number of an iteration"),
                ({"to": "inc", "iteration": -1}, 400, "'iteration' must be the number of an iteration"),
                ({"to": "inc", "iteration": True}, 400, "'iteration' must be the number of an iteration"),
                ({"to": "after", "iteration": 0}, 400, "'iteration' is for a task that runs in one"),
                ({"to": "inc", "iteration": 5}, 409, "in iteration 5 of the loop 'count', 'inc' is PENDING")]:
            status, answer = api(runtime, rewind_event(run_id, body))
            assert (status, words in answer["error"]) == (code, True), (body, answer)
        status, body = api(runtime, rewind_event(run_id, {"to": "inc", "iteration": 1, "reason": "recount"}))
        assert status == 202 and body == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1,
                                          "to": "inc", "iteration": 1, "discarded": ["after", "inc@count.1"],
                                          "compensating": []}
        assert runtime.run_until(lambda: (view(runtime, run_id)["redrives"] == 1
                                          and view(runtime, run_id)["status"] == "COMPLETED"), 30)
        # Iteration 0 kept; inc runs again in iteration 1 on n as it stands (3): 4 ends the loop there.
        assert view(runtime, run_id)["outputs"] == {"after": 40, "count": [{"n": 1}, {"n": 4}]}
    finally:
        runtime.stop()


def test_a_moving_run_is_rewound_into_a_loops_body_through_the_api_once_the_loop_has_ended(aws, clock):
    """The harnesses' rewind_loop_moving: the loop ends, after runs, the run waits on hold (2m) when it is rewound."""
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, WORKFLOWS["rewind_loop_moving"])
        assert runtime.run_until(lambda: view(runtime, run_id)["tasks"]["hold"]["status"] == "WAITING", 30)
        status, body = api(runtime, rewind_event(run_id, {"to": "inc", "iteration": 2, "reason": "recount"}))
        assert status == 202 and body == {"run_id": run_id, "status": "RUNNING", "changed": True, "rewind": 1,
                                          "to": "inc", "iteration": 2,
                                          "discarded": ["after", "hold", "last", "inc@count.2"], "compensating": []}
        assert runtime.run_until(lambda: (view(runtime, run_id)["redrives"] == 1
                                          and view(runtime, run_id)["tasks"]["hold"]["status"] == "WAITING"), 30)
        clock.advance(121)  # the new hold's timer (the old one's is stale)
        done = finish(runtime, run_id)
        assert done["outputs"] == {"last": 41, "count": [{"n": 1}, {"n": 2}, {"n": 4}]} and done["redrives"] == 1
        with runtime.lock:
            audit = [(e.target, e.reason, e.outcome) for e in get_history().actions(action=AuditAction.REWIND).items]
        assert audit == [(run_id, "to inc in iteration 2: recount", 202)]
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def server():
    yield from dev_server([LOOPLINE])


def test_rewind_into_a_loops_body_with_the_cli(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": COUNTING, "input": {}})[2])["run_id"]
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")

    refused = cli("rewind", run_id, "--to", "inc", "--iteration", "7", "--url", server)
    assert refused.returncode == 2 and "in iteration 7 of the loop 'count', 'inc' is PENDING" in refused.stderr
    done = cli("rewind", run_id, "--to", "inc", "--reason", "recount", "--url", server)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1,
                                       "to": "inc", "iteration": 2, "discarded": ["after", "inc@count.2"],
                                       "compensating": []}
    again = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                     lambda v: v["redrives"] == 1 and v["status"] == "COMPLETED")
    assert again["outputs"] == {"after": 40, "count": [{"n": 1}, {"n": 2}, {"n": 4}]}

    # The history is written off the run's changes, after them (the stream): wait for its entries.
    history = wait_for(lambda: get_json(f"{server}/runs/{run_id}/history?limit=500")[1]["entries"],
                       lambda entries: any(e["reason"] == "reopened at iteration 2 by a rewind" for e in entries))
    entry = next(e for e in history if e["kind"] == "run" and "rewind 1" in e["reason"])
    assert (entry["previous"], entry["status"]) == ("COMPLETED", "RUNNING")
    assert "rewind 1 to 'inc' in iteration 2 by " in entry["reason"] and "(recount)" in entry["reason"]
