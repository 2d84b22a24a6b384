"""The custom retry strategy (docs/reference.md, "retry"): an explicit list of waits, ``delays``. Wait n
(before attempt n+1) is ``delays[n-1]``, the last one repeated past the list's end; ``max_delay`` caps and
``jitter: full`` spreads each as for the other strategies; ``max_attempts`` left out is one more than
the waits. Validation refuses what it cannot mean, at its line:col."""

from __future__ import annotations

import random
import textwrap
from datetime import timedelta

import pytest

from statemachine.compiler import compile_workflow
from statemachine.decisions import retry_delay
from statemachine.diagnostics import WorkflowError
from statemachine.plan import RetryPolicy
from tests.conftest import compile_yaml
from tests.unit.test_engine_semantics import drive, start

CUSTOM = RetryPolicy(max_attempts=10, strategy="custom", delays=(1.0, 10.0, 60.0))


@pytest.mark.parametrize("attempt, expected", [(1, 1.0), (2, 10.0), (3, 60.0), (4, 60.0), (9, 60.0)])
def test_each_wait_is_the_lists_and_the_last_repeats(attempt: int, expected: float) -> None:
    assert retry_delay(CUSTOM, attempt, random.Random(0)) == expected


def test_max_delay_caps_and_jitter_spreads_a_custom_wait() -> None:
    capped = RetryPolicy(max_attempts=4, strategy="custom", delays=(1.0, 10.0, 60.0), max_delay=30.0)
    assert [retry_delay(capped, n, random.Random(0)) for n in (1, 2, 3)] == [1.0, 10.0, 30.0]
    spread = RetryPolicy(max_attempts=4, strategy="custom", delays=(60.0,), jitter="full")
    waits = [retry_delay(spread, 1, random.Random(seed)) for seed in range(20)]
    assert all(0 <= w <= 60.0 for w in waits) and len(set(waits)) > 1


def retry_of(text: str, task: str = "t") -> RetryPolicy:
    return compile_workflow(textwrap.dedent(text), "w.yaml").nodes[task].retry


def test_delays_compile_to_seconds_and_attempts_default_to_one_more():
    policy = retry_of("""
        workflow:
          metadata: {id: w}
          tasks:
            - {id: t, type: python, retry: {strategy: custom, delays: [1s, 10s, 1m]}, config: {code: "x = 1"}}
        """)
    assert (policy.strategy, policy.delays, policy.max_attempts) == ("custom", (1.0, 10.0, 60.0), 4)
    assert retry_of("""
        workflow:
          metadata: {id: w}
          tasks:
            - {id: t, type: python, retry: {strategy: custom, delays: [5s], max_attempts: 6}, config: {code: "x = 1"}}
        """).max_attempts == 6


def test_merged_field_by_field_and_a_tasks_own_strategy_wins():
    workflow = """
        workflow:
          metadata: {id: w}
          config:
            retry_policy: {strategy: custom, delays: [2s, 20s], retryable_errors: [TimeoutError]}
          tasks:
            - {id: t, type: python, retry: {max_attempts: 5}, config: {code: "x = 1"}}
            - {id: u, type: python, retry: {strategy: fixed, delay: 3s}, config: {code: "x = 1"}}
            - {id: v, type: python, config: {code: "x = 1"}}
        """
    kept = retry_of(workflow)
    assert (kept.strategy, kept.delays, kept.max_attempts, kept.retryable_errors) == (
        "custom", (2.0, 20.0), 5, ("TimeoutError",))
    own = retry_of(workflow, "u")
    assert (own.strategy, own.delays, own.delay, own.max_attempts) == ("fixed", None, 3.0, 1)
    assert retry_of(workflow, "v").max_attempts == 3


def test_a_plan_without_delays_keeps_its_json():
    plan = compile_yaml("""
        workflow:
          metadata: {id: w}
          tasks:
            - {id: t, type: python, retry: {max_attempts: 2}, config: {code: "x = 1"}}
        """)
    assert "delays" not in plan.canonical_json()
    custom = compile_yaml("""
        workflow:
          metadata: {id: w}
          tasks:
            - {id: t, type: python, retry: {strategy: custom, delays: [1s]}, config: {code: "x = 1"}}
        """)
    assert '"delays":[1.0]' in custom.canonical_json()
    assert type(custom).from_json(custom.to_json()).nodes["t"].retry.delays == (1.0,)


@pytest.mark.parametrize("retry, message", [
    ("{strategy: custom}", "w.yaml:5:14: strategy 'custom' needs 'delays': the waits before each retry in order, "
                           "e.g. [1s, 10s, 1m]"),
    ("{delays: [1s]}", "w.yaml:5:14: 'delays' goes with 'strategy: custom' (write both)"),
    ("{strategy: exponential, delays: [1s]}", "w.yaml:5:14: 'delays' goes with 'strategy: custom' (write both)"),
    ("{strategy: custom, delays: [1s], delay: 2s}", "w.yaml:5:14: strategy 'custom' waits its 'delays': 'delay' "
                                                    "has no meaning with it"),
    ("{strategy: custom, delays: []}", "w.yaml:5:14: 'delays' must list at least one wait, e.g. [1s, 10s, 1m]"),
    ("{strategy: custom, delays: [1s, soon]}", "w.yaml:5:46: invalid duration 'soon'"),
])
def test_what_a_custom_strategy_cannot_mean_is_refused_at_its_place(retry, message):
    text = ("workflow:\n  metadata: {id: w}\n  tasks:\n    - id: t\n"
            f"      retry: {retry}\n      type: python\n      config: {{code: 'x = 1'}}\n")
    with pytest.raises(WorkflowError) as raised:
        compile_workflow(text, "w.yaml")
    assert str(raised.value.diagnostics[0]).startswith(message), raised.value.diagnostics


def test_a_run_waits_each_listed_delay_between_its_attempts(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: listed}
          tasks:
            - id: flaky
              type: python
              retry: {strategy: custom, delays: [5s, 1m, 10m]}
              config: {code: "raise TimeoutError('try again')"}
        """)
    started = clock.now()
    view = drive(local, run_id, clock)
    assert (view["tasks"]["flaky"]["status"], view["tasks"]["flaky"]["attempts"]) == ("FAILED", 4)
    # 5 s, 1 min, 10 min: moved by the clock, not slept (each jump lands just after the wait is due)
    assert timedelta(seconds=665) <= clock.now() - started < timedelta(seconds=666)


def test_the_builder_writes_a_custom_strategy():
    from loopline import Retry, Workflow

    wf = Workflow("built").python("t", "x = 1", retry=Retry(strategy="custom", delays=("1s", timedelta(minutes=1))))
    policy = wf.compile().nodes["t"].retry
    assert (policy.strategy, policy.delays, policy.max_attempts) == ("custom", (1.0, 60.0), 3)
