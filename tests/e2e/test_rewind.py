"""Rewind end to end: through the API Lambda on the embedded default (moto + the local runtime), with
every worker batch delivered twice and the worker killed right after it began the rewind; and through
a running `loopline dev` with the CLI, its history and its audit log."""

from __future__ import annotations

import json
import subprocess

import pytest

from loopline.embedded.runtime import LocalRuntime
from tests.component.test_handlers import api
from tests.conftest import api_event
from tests.e2e.test_dev_server import LOOPLINE, dev_server, get_json, request, wait_for
from tests.e2e.test_invariants import SimulatedCrash, finish, start, view
from tests.e2e.test_redrive import twice_and_killed_after
from tests.unit.test_engine_redrive import CHAIN, breakable

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def rewind_event(run_id: str, body) -> dict:
    event = api_event("api_post_runs.json", body=body)
    event["resource"] = event["requestContext"]["resourcePath"] = "/runs/{run_id}/rewind"
    event["path"] = f"/runs/{run_id}/rewind"
    event["requestContext"]["path"] = f"/Prod/runs/{run_id}/rewind"
    event["pathParameters"] = {"run_id": run_id}
    return event


def test_rewind_through_the_api_survives_duplicates_and_a_crash(aws, clock, monkeypatch):
    ran = breakable(monkeypatch)
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, CHAIN)
        assert finish(runtime, run_id)["status"] == "COMPLETED"
        ran.clear()
        for body, code, words in [({"to": "nope"}, 404, "no task 'nope'"), ({}, 400, "'to' must be"),
                                  ({"to": "log"}, 400, "finally task"),
                                  ({"to": "b", "compensate": "yes"}, 400, "'compensate' must be true or false"),
                                  ({"to": "b", "reason": 5}, 400, "'reason' must be a string")]:
            status, answer = api(runtime, rewind_event(run_id, body))
            assert (status, words in answer["error"]) == (code, True), (body, answer)
        assert api(runtime, rewind_event("nope", {"to": "b"}))[0] == 404

        killed = twice_and_killed_after(monkeypatch, "begin_rewind")
        status, body = api(runtime, rewind_event(run_id, {"to": "b", "reason": "b read stale data"}))
        assert status == 202 and body == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1,
                                          "to": "b", "discarded": ["b", "c"], "compensating": []}
        with pytest.raises(SimulatedCrash):
            runtime.run_until(lambda: False, timeout=20)
        assert killed and view(runtime, run_id)["status"] == "COMPLETED"  # begun, nothing reset yet
        status, body = api(runtime, rewind_event(run_id, {"to": "c"}))
        assert status == 409 and "a rewind to 'b' is under way" in body["error"]
    finally:
        runtime.stop()  # every in-memory state of the "dead" process goes

    runtime = LocalRuntime(aws, clock=clock)
    try:
        # The rewind message comes back after its visibility timeout, and the run ends again.
        assert runtime.run_until(lambda: (view(runtime, run_id)["redrives"] == 1
                                          and view(runtime, run_id)["status"] == "COMPLETED"), 30)
        done = view(runtime, run_id)
        assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
        assert sorted(ran) == ["b", "c", "log"]  # a kept; b, c and the finally task once each
    finally:
        runtime.stop()


HOOKED = """
workflow:
  metadata: {id: hooked}
  tasks:
    - {id: fetch, type: python, config: {code: "result = 21"}}
    - {id: hook, type: callback, depends_on: [fetch], config: {timeout: 1h}}
    - id: total
      type: python
      depends_on: [hook]
      config: {code: "result = tasks['fetch']['output'] * tasks['hook']['output']['factor']"}
  outputs:
    mappings: {total: "${tasks.total.output}"}
"""


@pytest.fixture(scope="module")
def server():
    yield from dev_server([LOOPLINE])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=30)


def test_rewind_with_the_cli(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": HOOKED, "input": {}})[2])["run_id"]
    first = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    old_link = first["callbacks"][0]["url"]
    assert request("POST", old_link, {"factor": 1})[0] == 200
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")

    refused = cli("rewind", run_id, "--to", "nope", "--url", server)
    assert refused.returncode == 2 and "has no task 'nope'" in refused.stderr
    done = cli("rewind", run_id, "--to", "hook", "--reason", "the factor was wrong", "--url", server)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1,
                                       "to": "hook", "discarded": ["hook", "total"], "compensating": []}
    again = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    assert again["status"] == "RUNNING" and again["outputs"] is None and again["redrives"] == 1
    assert again["tasks"]["fetch"]["status"] == "COMPLETED"  # kept, not run again
    assert request("POST", old_link, {"factor": 9})[0] == 410  # the discarded wait's link is void
    assert request("POST", again["callbacks"][0]["url"], {"factor": 2})[0] == 200
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    assert view["outputs"] == {"total": 42}

    history = wait_for(lambda: get_json(f"{server}/runs/{run_id}/history?limit=500")[1]["entries"],
                       lambda entries: any("rewind 1" in e["reason"] for e in entries))
    entry = next(e for e in history if e["kind"] == "run" and "rewind 1" in e["reason"])
    assert (entry["previous"], entry["status"]) == ("COMPLETED", "RUNNING")
    assert "to 'hook' by " in entry["reason"] and "(the factor was wrong): 1 tasks kept" in entry["reason"]
    audit = get_json(f"{server}/audit?action=rewind")[1]["entries"]
    assert [(a["target"], a["reason"], a["outcome"]) for a in audit] == [
        (run_id, "to nope", 404), (run_id, "to hook: the factor was wrong", 202)]


def test_rewind_of_a_waiting_run_with_the_cli(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": HOOKED, "input": {}})[2])["run_id"]
    first = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    assert first["status"] == "RUNNING"
    done = cli("rewind", run_id, "--to", "fetch", "--reason", "fetch read stale data", "--url", server)
    assert done.returncode == 0, done.stderr  # RUNNING: no cancel first
    assert json.loads(done.stdout) == {"run_id": run_id, "status": "RUNNING", "changed": True, "rewind": 1,
                                       "to": "fetch", "discarded": ["fetch", "hook", "total"], "compensating": []}
    again = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                     lambda v: v["redrives"] == 1 and v["callbacks"])
    assert request("POST", first["callbacks"][0]["url"], {"factor": 9})[0] == 410  # the discarded wait's link
    assert request("POST", again["callbacks"][0]["url"], {"factor": 2})[0] == 200
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    assert view["outputs"] == {"total": 42} and view["redrives"] == 1

    def rewind_entries(history: dict) -> list[tuple[str, str]]:
        return [(e["previous"], e["status"]) for e in history["entries"]
                if e["kind"] == "run" and "rewind 1" in e["reason"]]

    # The history is written off the run's changes, after them (the stream): wait for its entries.
    history = wait_for(lambda: get_json(f"{server}/runs/{run_id}/history?limit=500")[1],
                       lambda h: len(rewind_entries(h)) >= 2)
    assert rewind_entries(history) == [("RUNNING", "PAUSED"), ("PAUSED", "RUNNING")]


TRIP = """
workflow:
  metadata: {id: trip}
  tasks:
    - {id: flight, type: python, config: {code: "result = 'FL-1'"}, compensation: {task_id: cancel_flight}}
    - id: hotel
      type: python
      depends_on: [flight]
      config: {code: "result = 'HT-' + str(len(tasks['flight']['output']))"}
      compensation: {task_id: cancel_hotel}
    - {id: cancel_flight, type: python, config: {code: "result = 'refunded flight'"}}
    - id: cancel_hotel
      type: python
      depends_on: [hotel]
      config: {code: "result = 'refunded ' + tasks['hotel']['output']"}
"""


def test_rewind_with_compensations_first_with_the_cli(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": TRIP, "input": {}})[2])["run_id"]
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    done = cli("rewind", run_id, "--to", "hotel", "--compensate", "--url", server)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["compensating"] == ["hotel"]
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                    lambda v: v["status"] == "COMPLETED" and v["redrives"] == 1)
    assert view["tasks"]["hotel"]["output"] == "HT-4" and view["tasks"]["hotel"]["attempts"] == 1
    history = wait_for(lambda: get_json(f"{server}/runs/{run_id}/history?limit=500")[1]["entries"],
                       lambda entries: sum(e["kind"] == "run" and e["status"] == "COMPLETED" for e in entries) == 2)
    # The hotel booked before was undone; its compensation's item was then reset with it (the history
    # keeps it), the flight kept and never compensated.
    assert [(e["item"], e["status"]) for e in history if e["item"].startswith("cancel_")] == [
        ("cancel_hotel@hotel", "RUNNING"), ("cancel_hotel@hotel", "COMPLETED"), ("cancel_hotel@hotel", "PENDING")]
    assert [(e["previous"], e["status"]) for e in history if e["kind"] == "run"][-3:] == [
        ("COMPLETED", "COMPENSATING"), ("COMPENSATING", "RUNNING"), ("RUNNING", "COMPLETED")]


# The trip, then a confirmation it waits for: RUNNING, both bookings COMPLETED.
CONFIRMED = TRIP + """    - {id: confirm, type: callback, depends_on: [hotel], config: {timeout: 1h}}
"""


def test_rewind_of_a_waiting_run_with_compensations_first_with_the_cli(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": CONFIRMED, "input": {}})[2])["run_id"]
    first = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    done = cli("rewind", run_id, "--to", "hotel", "--compensate", "--reason", "wrong dates", "--url", server)
    assert done.returncode == 0, done.stderr  # RUNNING: compensated first, without a cancel
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["discarded"], answer["compensating"]) == ("RUNNING", ["confirm", "hotel"],
                                                                              ["hotel"])
    again = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["redrives"] == 1 and v["callbacks"])
    assert request("POST", first["callbacks"][0]["url"], {"ok": True})[0] == 410  # the discarded wait's link
    assert request("POST", again["callbacks"][0]["url"], {"ok": True})[0] == 200
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    assert view["tasks"]["hotel"]["output"] == "HT-4" and view["tasks"]["hotel"]["attempts"] == 1
    history = wait_for(lambda: get_json(f"{server}/runs/{run_id}/history?limit=500")[1]["entries"],
                       lambda entries: any(e["kind"] == "run" and e["status"] == "COMPLETED" for e in entries))
    assert [(e["item"], e["status"]) for e in history if e["item"].startswith("cancel_")] == [
        ("cancel_hotel@hotel", "RUNNING"), ("cancel_hotel@hotel", "COMPLETED"), ("cancel_hotel@hotel", "PENDING")]
    assert [(e["previous"], e["status"], e["reason"].split(":")[-1].strip()) for e in history
            if e["kind"] == "run" and "rewind 1" in e["reason"]] == [
        ("RUNNING", "PAUSED", "compensating 1 tasks first"), ("PAUSED", "RUNNING", "1 tasks kept")]


# A booking undone by a compensation that waits for a callback: once the charge fails the run stays COMPENSATING.
DECLINED = """
workflow:
  metadata: {id: declined}
  tasks:
    - {id: book, type: python, config: {code: "result = 'BK-1'"}, compensation: {task_id: unbook}}
    - {id: charge, type: python, depends_on: [book], config: {code: "raise RuntimeError('card declined')"}}
    - {id: unbook, type: callback, depends_on: [book], config: {timeout: 1h}}
"""


def test_a_compensating_run_is_refused_a_rewind_until_it_has_ended(server):
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": DECLINED, "input": {}})[2])["run_id"]
    compensating = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                            lambda v: v["status"] == "COMPENSATING" and v["callbacks"])
    refused = cli("rewind", run_id, "--to", "book", "--compensate", "--url", server)
    assert refused.returncode == 2 and "it is COMPENSATING" in refused.stderr and "let it end" in refused.stderr
    assert request("POST", compensating["callbacks"][0]["url"], {"refunded": True})[0] == 200
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "FAILED")
    done = cli("rewind", run_id, "--to", "book", "--url", server)  # ended: the booking was undone, it runs again
    assert done.returncode == 0, done.stderr
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["redrives"] == 1
                    and v["status"] in ("COMPENSATING", "FAILED"))
    assert view["tasks"]["book"]["attempts"] == 1
