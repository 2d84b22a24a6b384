"""Redrive on the embedded default (moto + the local runtime, the handlers' own code): through the API
Lambda, with every worker batch delivered twice and the worker killed right after it reopened the run."""

from __future__ import annotations

import pytest

from infra.aws.dynamo_store import DynamoStore
from loopline.embedded.runtime import LocalRuntime
from tests.component.test_handlers import api
from tests.conftest import api_event
from tests.e2e.test_invariants import SimulatedCrash, finish, start, view
from tests.unit.test_engine_redrive import CHAIN, breakable

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def redrive_event(run_id: str) -> dict:
    event = api_event("api_get_run.json", {"run_id": run_id})
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "POST"
    event["resource"] = event["requestContext"]["resourcePath"] = "/runs/{run_id}/redrive"
    event["path"] += "/redrive"
    event["requestContext"]["path"] += "/redrive"
    return event


def twice_and_killed_after(monkeypatch, write: str) -> list:
    """From now on every worker batch is delivered twice, and the worker dies right after its first
    DynamoStore ``write``: the list returned holds that write's result once it happened."""
    real_invoke = LocalRuntime.invoke

    def twice(self, function_id, event):
        if function_id == "WorkerFunction":
            real_invoke(self, function_id, event)  # SQS delivers the same batch again
        return real_invoke(self, function_id, event)

    monkeypatch.setattr(LocalRuntime, "invoke", twice)
    real = getattr(DynamoStore, write)
    killed: list = []

    def dies_after(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        if not killed:
            killed.append(result)
            raise SimulatedCrash(f"killed right after {write}")
        return result

    monkeypatch.setattr(DynamoStore, write, dies_after)
    return killed


def test_redrive_through_the_api_survives_duplicates_and_a_crash(aws, clock, monkeypatch):
    ran = breakable(monkeypatch)
    ran.broken.add("b")
    runtime = LocalRuntime(aws, clock=clock)
    try:
        run_id = start(runtime, CHAIN)
        failed = finish(runtime, run_id)
        assert failed["status"] == "FAILED" and failed["tasks"]["a"]["status"] == "COMPLETED"
        ran.broken.clear()
        ran.clear()

        killed = twice_and_killed_after(monkeypatch, "reopen_run")
        status, body = api(runtime, redrive_event(run_id))
        assert status == 202 and body == {"run_id": run_id, "status": "FAILED", "changed": True, "redrive": 1}
        with pytest.raises(SimulatedCrash):
            runtime.run_until(lambda: False, timeout=20)
        assert killed and view(runtime, run_id)["status"] == "RUNNING"  # reopened, nothing restarted yet
    finally:
        runtime.stop()  # every in-memory state of the "dead" process goes

    runtime = LocalRuntime(aws, clock=clock)
    try:
        done = finish(runtime, run_id)  # the redrive message comes back after its visibility timeout
        assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
        assert sorted(ran) == ["b", "c", "log"]  # a kept; b, c and the finally task once each
        status, body = api(runtime, redrive_event(run_id))
        assert status == 409 and body["run_status"] == "COMPLETED" and "only a FAILED run" in body["error"]
        assert api(runtime, redrive_event("nope"))[0] == 404
    finally:
        runtime.stop()
