"""The engine's semantics (dsl.md "Which tasks run", retries, waits) on in-memory adapters.

The same engine code runs on the embedded stack; tests/e2e covers that path.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import compile_yaml


def drive(local, run_id, clock, limit=2000):
    """Pump messages; when only future messages remain, jump the clock to the next one."""
    for _ in range(limit):
        if local.pump_once():
            continue
        view = local.engine.describe_run(run_id)
        if view["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return view
        due = local.queue.next_due()
        if due is None:
            return view  # waiting on the outside world (a callback, an approval)
        clock.advance(max((due - clock.now()).total_seconds(), 0) + 0.001)
    raise AssertionError("run did not settle")


def settle(local, run_id):
    """Pump what is due now, without moving the clock."""
    while local.pump_once():
        pass
    return local.engine.describe_run(run_id)


def deliver_twice(local) -> int:
    """Every message, of the ready queue and of the result queue, handled twice in a row, until none
    is left (the clock is not moved). Returns how many distinct messages there were."""
    count = 0
    while True:
        result = local.results.receive_body()
        if result is not None:
            local.engine.accept_result(result)
            local.engine.accept_result(result)
        elif (message := local.queue.receive()) is not None:
            local.engine.handle(message)
            local.engine.handle(message)
        else:
            return count
        count += 1


def start(local, text, inputs=None):
    plan = compile_yaml(text)
    return local.engine.start_run(plan, inputs or {})


def statuses(view):
    return {k: t["status"] for k, t in view["tasks"].items()}


def test_chain_outputs_exports_and_mappings(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: chain}
          variables: [{name: greeting, default: hello}]
          tasks:
            - id: a
              type: python
              config: {code: "result = inputs['n'] * 2"}
            - id: b
              type: python
              depends_on: [a]
              config: {code: "doubled = tasks['a']['output']; label = greeting + '!'"}
              outputs:
                - {name: value, value: "${doubled + 1}", export: true}
                - {name: label, value: "${label}"}
            - id: c
              type: python
              depends_on: [b]
              config: {code: "result = value * 10"}
          outputs:
            mappings:
              c: "${tasks.c.output}"
              text: "b said ${tasks.b.output.label} with ${variables.value}"
        """, {"n": 3})
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["b"]["output"] == {"value": 7, "label": "hello!"}
    assert view["outputs"] == {"c": 70, "text": "b said hello! with 7"}
    assert all(t["attempts"] == 1 for t in view["tasks"].values())


def test_when_and_skip_if_skip_and_skips_propagate(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: skips}
          tasks:
            - {id: a, type: python, config: {code: "result = 1"}}
            - {id: b, type: python, depends_on: [a], when: "${tasks.a.output > 5}", config: {code: "result = 2"}}
            - {id: c, type: python, depends_on: [b], config: {code: "result = 3"}}
            - {id: d, type: python, depends_on: [a], skip_if: "${inputs.flag}", config: {code: "result = 4"}}
            - {id: e, type: python, depends_on: [c, d], config: {code: "result = 5"}}
        """, {"flag": True})
    view = drive(local, run_id, clock)
    assert statuses(view) == {"a": "COMPLETED", "b": "SKIPPED", "c": "SKIPPED", "d": "SKIPPED", "e": "SKIPPED"}
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["b"]["attempts"] == 0


def test_failure_cancels_dependents_and_fails_run_but_independent_work_finishes(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: fails}
          tasks:
            - {id: boom, type: python, config: {code: "raise KeyError('missing thing')"}}
            - {id: after, type: python, depends_on: [boom], config: {code: "result = 1"}}
            - {id: cleanup, type: python, depends_on: [boom], trigger_rule: all_done, config: {code: "result = 'ran'"}}
            - {id: alone, type: python, config: {code: "result = 'fine'"}}
        """)
    view = drive(local, run_id, clock)
    assert view["status"] == "FAILED"
    assert statuses(view) == {"boom": "FAILED", "after": "CANCELLED", "cleanup": "COMPLETED", "alone": "COMPLETED"}
    assert view["tasks"]["boom"]["error"]["type"] == "KeyError"
    assert view["error"]["type"] == "KeyError" and "boom" in view["error"]["message"]
    assert view["outputs"] is None


@pytest.mark.parametrize("rule, expected", [
    ("all_success", "CANCELLED"),
    ("all_done", "COMPLETED"),
    ("one_success", "COMPLETED"),
    ("one_failed", "COMPLETED"),
    ("none_failed", "CANCELLED"),
    ("none_failed_min_one_success", "CANCELLED"),
])
def test_trigger_rules_with_one_failed_and_one_completed_dependency(local, clock, rule, expected):
    run_id = start(local, f"""
        workflow:
          metadata: {{id: rules}}
          tasks:
            - {{id: ok, type: python, config: {{code: "result = 1"}}}}
            - {{id: bad, type: python, config: {{code: "raise ValueError('x')"}}}}
            - {{id: join, type: python, depends_on: [ok, bad], trigger_rule: {rule}, config: {{code: "result = 2"}}}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["join"]["status"] == expected
    assert view["status"] == "FAILED"  # the failure of `bad` was not caught


def test_condition_skips_the_untaken_branch_and_fans_in(local, clock):
    text = """
        workflow:
          metadata: {id: branches}
          tasks:
            - {id: score, type: python, config: {code: "result = inputs['score']"}}
            - {id: report, type: python, depends_on: [celebrate, console], config: {code: "result = 'done'"}}
          control_flow:
            conditions:
              - id: good
                if: "${tasks.score.output >= 50}"
                then:
                  - {id: celebrate, type: python, config: {code: "result = 'yay'"}}
                  - {id: party, type: python, depends_on: [celebrate], config: {code: "result = 'party'"}}
                else:
                  - {id: console, type: python, config: {code: "result = 'next time'"}}
        """
    high = drive(local, start(local, text, {"score": 80}), clock)
    assert statuses(high) == {"score": "COMPLETED", "good": "COMPLETED", "celebrate": "COMPLETED",
                              "party": "COMPLETED", "console": "SKIPPED", "report": "COMPLETED"}
    low = drive(local, start(local, text, {"score": 10}), clock)
    assert statuses(low) == {"score": "COMPLETED", "good": "COMPLETED", "celebrate": "SKIPPED",
                             "party": "SKIPPED", "console": "COMPLETED", "report": "COMPLETED"}
    assert low["tasks"]["good"]["output"] == {"result": False, "branch": "else"}


def test_branch_task_with_a_completed_outside_dependency_is_still_skipped(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: branchdeps}
          tasks:
            - {id: a, type: python, config: {code: "result = 1"}}
          control_flow:
            conditions:
              - id: never
                if: "${false}"
                then:
                  - {id: t, type: python, depends_on: [a], config: {code: "result = 2"}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["t"]["status"] == "SKIPPED"


def test_retries_with_backoff_then_success(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: retries}
          variables: [{name: attempts_seen, default: 0}]
          tasks:
            - id: flaky
              type: python
              retry: {max_attempts: 3, strategy: exponential, delay: 10s, backoff_multiplier: 3}
              config:
                code: |
                  import random
                  raise TimeoutError('try again')
        """)
    started = clock.now()
    view = drive(local, run_id, clock)
    assert view["tasks"]["flaky"]["status"] == "FAILED"
    assert view["tasks"]["flaky"]["attempts"] == 3
    # 10 s then 30 s of backoff, moved by the clock, not slept
    assert (clock.now() - started) >= timedelta(seconds=40)


def test_retryable_errors_limit_what_is_retried(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: retry_filter}
          tasks:
            - id: t
              type: python
              retry: {max_attempts: 5, delay: 1s, retryable_errors: [TimeoutError]}
              config: {code: "raise ValueError('not retryable')"}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["t"]["attempts"] == 1
    assert view["tasks"]["t"]["error"] == {"type": "ValueError", "message": "not retryable"}


def test_workflow_retry_policy_and_max_retries_apply(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: global_retry}
          config:
            max_retries: 2
            retry_policy: {strategy: fixed, initial_delay: 5s}
          tasks:
            - {id: t, type: python, config: {code: "raise RuntimeError('always')"}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["t"]["attempts"] == 3


def test_durable_wait_completes_when_the_clock_reaches_it(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: waits}
          tasks:
            - {id: pause, type: wait, config: {duration: 3d}}
            - {id: after, type: python, depends_on: [pause], config: {code: "result = 'later'"}}
        """)
    local.pump_once()
    local.pump_once()
    assert local.engine.describe_run(run_id)["tasks"]["pause"]["status"] == "WAITING"
    before = clock.now()
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert clock.now() - before >= timedelta(days=3)


def test_callback_timeout_fails_with_callback_timeout(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: cb}
          tasks:
            - {id: hook, type: callback, config: {timeout: 10m}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["hook"]["status"] == "FAILED"
    assert view["tasks"]["hook"]["error"]["type"] == "CallbackTimeout"


def test_callback_body_becomes_the_output_and_the_link_is_single_use(local, clock):
    from infra.engine import LinkError

    run_id = start(local, """
        workflow:
          metadata: {id: cb2}
          tasks:
            - {id: hook, type: callback, config: {timeout: 1h}}
            - {id: use, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['n'] + 1"}}
        """)
    view = settle(local, run_id)
    url = view["callbacks"][0]["url"]
    token = url.rsplit("/", 1)[1]
    assert local.engine.submit_callback(token, {"n": 41})["status"] == "accepted"
    with pytest.raises(LinkError) as used:
        local.engine.submit_callback(token, {"n": 1})
    assert used.value.status == 410
    with pytest.raises(LinkError) as forged:
        local.engine.submit_callback(token[:-2] + "xx", {"n": 1})
    assert forged.value.status == 404
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["use"]["output"] == 42


@pytest.mark.parametrize("policy, decision, status", [
    (None, "TIMED_OUT", "COMPLETED"),
    ({"action": "auto_approve"}, "APPROVED", "COMPLETED"),
    ({"action": "auto_reject"}, "REJECTED", "COMPLETED"),
    ({"action": "fail"}, None, "FAILED"),
])
def test_approval_timeout_follows_the_escalation_policy(local, clock, policy, decision, status):
    import json

    policy_yaml = f"escalation_policy: {json.dumps(policy)}" if policy else ""
    run_id = start(local, f"""
        workflow:
          metadata: {{id: appr}}
          tasks:
            - id: ok
              type: approval
              config:
                title: Ship it?
                approvers: [boss@example.com]
                timeout: 3d
                {policy_yaml}
        """)
    view = drive(local, run_id, clock)
    task = view["tasks"]["ok"]
    assert task["status"] == status
    if decision:
        assert task["output"]["decision"] == decision
        assert task["output"]["approved"] is (decision == "APPROVED")
    else:
        assert task["error"]["type"] == "ApprovalTimeout"


def test_approval_decision_is_recorded_and_rejection_is_a_result(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: appr2}
          tasks:
            - id: ok
              type: approval
              config: {title: "Pay ${inputs.amount}?", approvers: [a@example.com, b@example.com]}
            - id: next
              type: python
              depends_on: [ok]
              config: {code: "result = tasks['ok']['output']['decision']"}
        """, {"amount": 12})
    view = drive(local, run_id, clock)
    entry = view["approvals"][0]
    assert entry["title"] == "Pay 12?" and entry["approver"] == "a@example.com"
    token = entry["url"].rsplit("/", 1)[1]
    info = local.engine.approval_info(token)
    assert info["title"] == "Pay 12?" and info["approvers"] == ["a@example.com", "b@example.com"]
    local.engine.decide(token, "REJECTED", "too much")
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    out = view["tasks"]["ok"]["output"]
    assert out["decision"] == "REJECTED" and out["approved"] is False and out["comments"] == "too much"
    assert view["tasks"]["next"]["output"] == "REJECTED"


def test_expression_error_fails_the_task_with_expression_error(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: exprerr}
          tasks:
            - {id: a, type: python, config: {code: "result = {'x': 1}"}}
            - id: b
              type: python
              depends_on: [a]
              when: "${tasks.a.output.nope > 1}"
              config: {code: "result = 1"}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["b"]["status"] == "FAILED"
    assert view["tasks"]["b"]["error"]["type"] == "ExpressionError"
    assert "nope" in view["tasks"]["b"]["error"]["message"]


def test_duplicate_messages_do_not_advance_twice(local, clock, actions):
    """Every message delivered twice: each task's action runs once and the run ends as a clean run.

    A redelivery cannot know whether its earlier enqueue happened, so it may
    enqueue a dependent again; the dependent's conditional claim drops the copy.
    """
    run_id = start(local, """
        workflow:
          metadata: {id: dup}
          tasks:
            - {id: a, type: python, config: {code: "result = 1"}}
            - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
            - {id: c, type: python, depends_on: [a, b], config: {code: "result = 3"}}
        """)
    deliver_twice(local)  # the ready queue's messages, and the task runner's results
    view = local.engine.describe_run(run_id)
    assert view["status"] == "COMPLETED"
    assert {k: (t["status"], t["attempts"], t["output"]) for k, t in view["tasks"].items()} == {
        "a": ("COMPLETED", 1, 1), "b": ("COMPLETED", 1, 2), "c": ("COMPLETED", 1, 3)}
    assert sorted(actions) == ["a", "b", "c"]


def test_python_code_cannot_see_the_engine_environment(local, clock, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "top-secret")
    run_id = start(local, """
        workflow:
          metadata: {id: sandbox}
          tasks:
            - {id: a, type: python, config: {code: "import os; result = os.environ.get('AWS_SECRET_ACCESS_KEY')"}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["a"]["output"] is None


GATED = """
workflow:
  metadata: {id: gated}
  tasks:
    - id: pay
      type: python
      requires_approval:
        enabled: true
        approvers: [cfo@example.com]
        timeout: 1d
        %s
      config: {code: "result = 'paid'"}
      outputs:
        - {name: result, value: "${response}"}
        - {name: who, value: "${approval.approver}"}
    - {id: receipt, type: python, depends_on: [pay], config: {code: "result = 'sent'"}}
"""


def test_requires_approval_runs_the_task_only_when_approved(local, clock):
    run_id = start(local, GATED % "")
    view = settle(local, run_id)
    assert view["tasks"]["pay"]["status"] == "WAITING"
    entry = view["approvals"][0]
    assert entry["task_id"] == "pay" and entry["approver"] == "cfo@example.com"
    local.engine.decide(entry["url"].rsplit("/", 1)[1], "APPROVED", "fine")
    view = settle(local, run_id)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["pay"]["output"] == {"result": "paid", "who": "cfo@example.com"}
    assert view["tasks"]["receipt"]["status"] == "COMPLETED"


def test_requires_approval_rejected_skips_the_task_and_what_hangs_from_it(local, clock):
    run_id = start(local, GATED % "")
    token = settle(local, run_id)["approvals"][0]["url"].rsplit("/", 1)[1]
    local.engine.decide(token, "REJECTED")
    view = settle(local, run_id)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["pay"]["status"] == "SKIPPED" and view["tasks"]["receipt"]["status"] == "SKIPPED"


@pytest.mark.parametrize("policy, status", [
    ("", "SKIPPED"),
    ("escalation_policy: {action: auto_approve}", "COMPLETED"),
])
def test_requires_approval_timeout(local, clock, policy, status):
    view = drive(local, start(local, GATED % policy), clock)
    assert view["tasks"]["pay"]["status"] == status


def test_inputs_and_results_over_the_size_limits_are_clear_errors(local, clock):
    from statemachine.inputs import InputError

    with pytest.raises(InputError, match="larger than 5 MB"):
        start(local, "workflow:\n  metadata: {id: big}\n", {"blob": "x" * (5 << 20)})
    view = drive(local, start(local, """
        workflow:
          metadata: {id: big_out}
          tasks:
            - {id: huge, type: python, config: {code: "result = 'x' * (10 << 20)"}}
        """), clock)
    assert view["tasks"]["huge"]["error"]["type"] == "OutputTooLarge"
    assert view["status"] == "FAILED"
