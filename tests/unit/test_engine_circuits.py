"""Circuit breakers in the engine (infra/engine/circuits.py), in local mode on both local stores: failures
across runs open the breaker, later attempts fail with CircuitOpen without running, one trial goes through
after open_for and its success closes it; the history and the metrics tell each change."""

from __future__ import annotations

import pytest

from loopline.memory.local_mode import LocalMode
from tests.conftest import compile_yaml
from tests.unit.test_engine_semantics import drive

PAYMENTS = """
workflow:
  metadata: {id: payments}
  tasks:
    - id: charge
      type: python
      config:
        code: |
          if inputs['down']:
              raise ConnectionError('payments api down')
          result = 'charged'
      circuit_breaker: {name: payments_api, failures: 2, window: 1m, open_for: 30s}
"""


@pytest.fixture(params=["memory", "sqlite"])
def mode(request, clock, tmp_path):
    local = LocalMode(clock=clock, inline_code=True, state=tmp_path / "state" if request.param == "sqlite" else None)
    yield local
    local.close()


def charge(local, clock, down: bool, workflow: str = PAYMENTS) -> dict:
    run_id = local.engine.start_run(compile_yaml(workflow), {"down": down})
    view = drive(local, run_id, clock)
    while local.pump_once():  # the last writes into history and metrics
        pass
    return {"run_id": run_id, "status": view["status"], "error": view["tasks"]["charge"]["error"]}


def reasons(local, run_id: str) -> list[str]:
    return [entry.reason for entry in local.history.of_run(run_id).items if entry.item == "charge"]


def test_failures_open_the_breaker_later_runs_fail_fast_and_a_trial_closes_it(mode, clock):
    first = charge(mode, clock, down=True)
    assert first["error"]["type"] == "ConnectionError"
    second = charge(mode, clock, down=True)
    assert second["error"]["type"] == "ConnectionError"
    assert any("circuit breaker 'payments_api' opened" in r for r in reasons(mode, second["run_id"]))

    # open: the task fails at once, without running its code (it would have succeeded)
    refused = charge(mode, clock, down=False)
    assert refused["status"] == "FAILED" and refused["error"]["type"] == "CircuitOpen"
    assert "payments_api" in refused["error"]["message"]

    clock.advance(30)
    trial = charge(mode, clock, down=False)  # open_for has passed: the trial goes through and succeeds
    assert trial["status"] == "COMPLETED"
    assert any("circuit breaker 'payments_api' closed" in r for r in reasons(mode, trial["run_id"]))
    assert charge(mode, clock, down=False)["status"] == "COMPLETED"

    text = mode.metrics.render()
    assert 'loopline_circuit_opened_total{breaker="payments_api",status="OPEN",task_type="python",' \
           'workflow="payments"} 1' in text
    assert 'loopline_circuit_closed_total{breaker="payments_api",status="CLOSED",task_type="python",' \
           'workflow="payments"} 1' in text


def test_a_failed_trial_opens_it_again(mode, clock):
    charge(mode, clock, down=True)
    charge(mode, clock, down=True)
    clock.advance(30)
    trial = charge(mode, clock, down=True)
    assert trial["error"]["type"] == "ConnectionError"
    assert any("circuit breaker 'payments_api' reopened" in r for r in reasons(mode, trial["run_id"]))
    assert charge(mode, clock, down=False)["error"]["type"] == "CircuitOpen"
    assert 'loopline_circuit_opened_total{breaker="payments_api",status="OPEN",task_type="python",' \
           'workflow="payments"} 2' in mode.metrics.render()


def test_a_retry_policy_sees_circuit_open(mode, clock):
    """retryable_errors can leave CircuitOpen out: the refused task fails at once instead of retrying."""
    text = PAYMENTS.replace("      circuit_breaker:", "      retry: {max_attempts: 3, delay: 1s, retryable_errors: "
                            "[ConnectionError]}\n      circuit_breaker:")
    for _ in range(2):  # the first run alone fails 3 attempts: the breaker opens at its second
        run_id = mode.engine.start_run(compile_yaml(text), {"down": True})
        view = drive(mode, run_id, clock)
    assert view["tasks"]["charge"]["error"]["type"] == "CircuitOpen"
    assert view["tasks"]["charge"]["attempts"] == 1


def test_a_change_is_told_once_by_the_outcome_not_by_what_it_propagates_to(mode, clock):
    """The failure that opens the breaker cancels the task after it: only the failure tells the opening."""
    text = PAYMENTS + """    - {id: receipt, type: python, depends_on: [charge], config: {code: "result = 1"}}
"""
    for _ in range(2):
        run_id = mode.engine.start_run(compile_yaml(text), {"down": True})
        drive(mode, run_id, clock)
    while mode.pump_once():
        pass
    told = [e for e in mode.history.of_run(run_id).items if "circuit breaker" in e.reason]
    assert [(e.item, e.status) for e in told] == [("charge", "FAILED")]
    assert 'loopline_circuit_opened_total{breaker="payments_api",status="OPEN",task_type="python",' \
           'workflow="payments"} 1' in mode.metrics.render()


def test_another_workflow_naming_the_breaker_has_its_own(mode, clock):
    """A workflow's author cannot open (or close) another workflow's breaker by naming it: one breaker per
    workflow id and name."""
    intruder = PAYMENTS.replace("{id: payments}", "{id: intruder}")
    for _ in range(2):
        assert charge(mode, clock, down=True, workflow=intruder)["error"]["type"] == "ConnectionError"
    assert charge(mode, clock, down=True, workflow=intruder)["error"]["type"] == "CircuitOpen"  # its own opened
    assert charge(mode, clock, down=False)["status"] == "COMPLETED"  # payments' breaker is closed
