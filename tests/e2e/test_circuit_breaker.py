"""A circuit breaker on the embedded default (DynamoDB, SQS, the task runner and HistoryFunction on moto,
each handler held to its role in template.yaml): a python task that keeps failing opens the breaker, later
runs fail fast with CircuitOpen without running the task's code, and after open_for one trial run goes
through and its success closes the breaker. The run history and GET /metrics show each change."""

from __future__ import annotations

from tests.e2e.test_history import api, call, ended, history  # noqa: F401 (api: the fixture)
from tests.e2e.test_metrics import metrics
from tests.unit.test_engine_circuits import PAYMENTS


def charge(base: str, down: bool) -> tuple[str, dict]:
    status, started = call(base, "POST", "/runs", {"workflow": PAYMENTS, "input": {"down": down}})
    assert status == 201, started
    run_id = started["run_id"]
    return run_id, ended(base, run_id)


def charge_reasons(base: str, run_id: str, final: str) -> list[str]:
    return [e["reason"] for e in history(base, run_id, final) if e["kind"] == "task" and e["item"] == "charge"]


def test_a_failing_dependency_opens_the_breaker_then_a_trial_closes_it(api, clock):  # noqa: F811
    first, view = charge(api, down=True)
    assert view["tasks"]["charge"]["error"]["type"] == "ConnectionError"
    second, view = charge(api, down=True)
    assert view["tasks"]["charge"]["error"]["type"] == "ConnectionError"
    assert any("circuit breaker 'payments_api' opened" in r for r in charge_reasons(api, second, "FAILED"))

    refused, view = charge(api, down=False)  # its code would succeed: it never ran
    assert view["status"] == "FAILED"
    assert view["tasks"]["charge"]["error"]["type"] == "CircuitOpen"
    assert view["tasks"]["charge"]["attempts"] == 1

    clock.advance(30)
    trial, view = charge(api, down=False)
    assert view["status"] == "COMPLETED" and view["tasks"]["charge"]["output"] == "charged"
    assert any("circuit breaker 'payments_api' closed" in r for r in charge_reasons(api, trial, "COMPLETED"))
    _, view = charge(api, down=False)
    assert view["status"] == "COMPLETED"

    _, samples = metrics(api)
    labels = 'task_type="python",workflow="payments"'
    assert samples[f'loopline_circuit_opened_total{{breaker="payments_api",status="OPEN",{labels}}}'] == 1
    assert samples[f'loopline_circuit_closed_total{{breaker="payments_api",status="CLOSED",{labels}}}'] == 1
