"""statemachine/decisions.py: trigger rules, edge outcomes, retry delays, approval timeouts (pure functions)."""

from __future__ import annotations

import random

import pytest

from statemachine.decisions import (
    APPROVAL_TIMEOUT_ACTIONS,
    DepCounts,
    approval_timeout_outcome,
    edge_outcome,
    is_retryable,
    readiness,
    retry_delay,
)
from statemachine.plan import Node, RetryPolicy

DEFAULT = "none_failed_min_one_success"
RULES = [DEFAULT, "all_success", "all_done", "one_success", "one_failed", "none_failed"]


def node(rule: str = DEFAULT, **fields) -> Node:
    return Node(id="t", type="python", trigger_rule=rule, **fields)


# ------------------------------------------------------------------ readiness

# (ok, failed, skipped) -> expected decision, for every rule.
READINESS_TABLE: dict[str, dict[tuple[int, int, int], str]] = {
    # dsl.md: runs when no dependency FAILED and at least one COMPLETED; every dependency
    # SKIPPED -> SKIPPED; a FAILED dependency -> CANCELLED.
    DEFAULT: {
        (1, 0, 0): "run", (3, 0, 0): "run", (1, 0, 2): "run",
        (0, 0, 1): "skip", (0, 0, 3): "skip",
        (0, 1, 0): "cancel", (2, 1, 0): "cancel", (0, 1, 1): "cancel", (1, 1, 1): "cancel", (0, 3, 0): "cancel",
    },
    "all_success": {
        (1, 0, 0): "run", (3, 0, 0): "run",
        (1, 0, 2): "skip", (0, 0, 1): "skip", (0, 0, 3): "skip",
        (0, 1, 0): "cancel", (2, 1, 0): "cancel", (0, 1, 1): "cancel", (1, 1, 1): "cancel", (0, 3, 0): "cancel",
    },
    "all_done": {
        (1, 0, 0): "run", (3, 0, 0): "run", (1, 0, 2): "run",
        (0, 0, 1): "run", (0, 0, 3): "run",
        (0, 1, 0): "run", (2, 1, 0): "run", (0, 1, 1): "run", (1, 1, 1): "run", (0, 3, 0): "run",
    },
    "one_success": {
        (1, 0, 0): "run", (3, 0, 0): "run", (1, 0, 2): "run",
        (0, 0, 1): "skip", (0, 0, 3): "skip",
        (0, 1, 0): "cancel", (2, 1, 0): "run", (0, 1, 1): "cancel", (1, 1, 1): "run", (0, 3, 0): "cancel",
    },
    "one_failed": {
        (1, 0, 0): "skip", (3, 0, 0): "skip", (1, 0, 2): "skip",
        (0, 0, 1): "skip", (0, 0, 3): "skip",
        (0, 1, 0): "run", (2, 1, 0): "run", (0, 1, 1): "run", (1, 1, 1): "run", (0, 3, 0): "run",
    },
    "none_failed": {
        (1, 0, 0): "run", (3, 0, 0): "run", (1, 0, 2): "run",
        (0, 0, 1): "run", (0, 0, 3): "run",
        (0, 1, 0): "cancel", (2, 1, 0): "cancel", (0, 1, 1): "cancel", (1, 1, 1): "cancel", (0, 3, 0): "cancel",
    },
}

READINESS_CASES = [
    pytest.param(rule, counts, expected, id=f"{rule}-ok{counts[0]}-failed{counts[1]}-skipped{counts[2]}")
    for rule, table in READINESS_TABLE.items()
    for counts, expected in table.items()
]


def test_the_table_covers_every_rule() -> None:
    assert set(READINESS_TABLE) == set(RULES)
    assert set(RULES) == set(Node.model_fields["trigger_rule"].annotation.__args__)
    combos = {counts for table in READINESS_TABLE.values() for counts in table}
    assert all(set(table) == combos for table in READINESS_TABLE.values())


@pytest.mark.parametrize("rule, counts, expected", READINESS_CASES)
def test_readiness(rule: str, counts: tuple[int, int, int], expected: str) -> None:
    ok, failed, skipped = counts
    assert readiness(node(rule), DepCounts(ok=ok, failed=failed, skipped=skipped)) == expected


def test_default_rule_is_none_failed_min_one_success() -> None:
    assert Node(id="t").trigger_rule == DEFAULT
    assert readiness(Node(id="t"), DepCounts(ok=0, failed=0, skipped=2)) == "skip"
    assert readiness(Node(id="t"), DepCounts(ok=1, failed=1)) == "cancel"


@pytest.mark.parametrize("rule", RULES)
def test_roots_with_no_dependencies_run(rule: str) -> None:
    assert readiness(node(rule), DepCounts()) == "run"


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("counts", [(0, 0, 1), (1, 0, 1), (0, 1, 1), (5, 2, 3)], ids=str)
def test_forced_skip_always_skips(rule: str, counts: tuple[int, int, int]) -> None:
    ok, failed, skipped = counts
    assert readiness(node(rule), DepCounts(ok=ok, failed=failed, skipped=skipped, forced_skip=True)) == "skip"


# ------------------------------------------------------------------ edge_outcome

COND = Node(id="cond", kind="condition", condition="${inputs.x > 1}", then=("a",), else_=("b",),
            dependents=("a", "b", "after"))
THEN_MEMBER = Node(id="a", type="python", deps=("cond",), branch_of=("cond", "then"))
ELSE_MEMBER = Node(id="b", type="python", deps=("cond",), branch_of=("cond", "else"))
PLAIN_DEPENDENT = Node(id="after", type="python", deps=("cond",))  # depends on the condition, in no branch
OTHER_COND_MEMBER = Node(id="c", type="python", deps=("cond",), branch_of=("other", "then"))
TASK = Node(id="x", type="python", dependents=("y",))
DEPENDENT = Node(id="y", type="python", deps=("x",))

THEN_OUTPUT = {"result": True, "branch": "then"}
ELSE_OUTPUT = {"result": False, "branch": "else"}


@pytest.mark.parametrize("status, output, dependent, expected", [
    # The taken branch is "ok", the untaken one is skipped outright.
    ("COMPLETED", THEN_OUTPUT, THEN_MEMBER, "ok"),
    ("COMPLETED", THEN_OUTPUT, ELSE_MEMBER, "force_skip"),
    ("COMPLETED", ELSE_OUTPUT, THEN_MEMBER, "force_skip"),
    ("COMPLETED", ELSE_OUTPUT, ELSE_MEMBER, "ok"),
    # Truthiness of "result" decides the branch.
    ("COMPLETED", {"result": 1}, THEN_MEMBER, "ok"),
    ("COMPLETED", {"result": 0}, ELSE_MEMBER, "ok"),
    ("COMPLETED", {"result": None}, THEN_MEMBER, "force_skip"),
    ("COMPLETED", {}, ELSE_MEMBER, "ok"),
    ("COMPLETED", None, THEN_MEMBER, "force_skip"),
    ("COMPLETED", None, ELSE_MEMBER, "ok"),
    # A condition that did not complete takes no branch at all.
    *[(status, output, member, "force_skip")
      for status in ("FAILED", "SKIPPED", "CANCELLED")
      for output in (THEN_OUTPUT, ELSE_OUTPUT, None)
      for member in (THEN_MEMBER, ELSE_MEMBER)],
    # A dependent of the condition outside its branches sees a plain dependency.
    ("COMPLETED", THEN_OUTPUT, PLAIN_DEPENDENT, "ok"),
    ("COMPLETED", ELSE_OUTPUT, PLAIN_DEPENDENT, "ok"),
    ("SKIPPED", None, PLAIN_DEPENDENT, "skipped"),
    ("FAILED", None, PLAIN_DEPENDENT, "failed"),
    ("CANCELLED", None, PLAIN_DEPENDENT, "failed"),
    # A member of another condition's branch: plain too.
    ("COMPLETED", ELSE_OUTPUT, OTHER_COND_MEMBER, "ok"),
    ("FAILED", None, OTHER_COND_MEMBER, "failed"),
])
def test_edge_outcome_of_a_condition(status: str, output, dependent: Node, expected: str) -> None:
    assert edge_outcome(COND, status, output, dependent) == expected


@pytest.mark.parametrize("status, expected", [
    ("COMPLETED", "ok"), ("SKIPPED", "skipped"), ("FAILED", "failed"), ("CANCELLED", "failed"),
])
@pytest.mark.parametrize("output", [None, {"result": False}, {"result": True}, [1, 2]], ids=str)
def test_edge_outcome_of_a_plain_dependency(status: str, expected: str, output) -> None:
    assert edge_outcome(TASK, status, output, DEPENDENT) == expected


def test_a_task_named_in_branch_of_but_not_a_condition_is_plain() -> None:
    # Only a condition node takes branches: a task whose id matches branch_of[0] stays plain.
    fake = Node(id="cond", type="python")
    assert edge_outcome(fake, "COMPLETED", {"result": False}, THEN_MEMBER) == "ok"
    assert edge_outcome(fake, "SKIPPED", None, THEN_MEMBER) == "skipped"


# ------------------------------------------------------------------ retry_delay


@pytest.mark.parametrize("attempt", [1, 2, 3, 10])
def test_fixed_delay(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=20, strategy="fixed", delay=7.5)
    assert retry_delay(policy, attempt, random.Random(0)) == 7.5


@pytest.mark.parametrize("attempt, expected", [(0, 2.0), (1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0)])
def test_exponential_delay(attempt: int, expected: float) -> None:
    policy = RetryPolicy(max_attempts=10, strategy="exponential", delay=2.0, backoff_multiplier=3.0)
    assert retry_delay(policy, attempt, random.Random(0)) == pytest.approx(expected)


@pytest.mark.parametrize("strategy, attempt, expected", [
    ("exponential", 1, 1.0), ("exponential", 4, 8.0), ("exponential", 5, 10.0), ("exponential", 30, 10.0),
    ("fixed", 1, 10.0), ("fixed", 9, 10.0),
])
def test_max_delay_caps(strategy: str, attempt: int, expected: float) -> None:
    delay = 1.0 if strategy == "exponential" else 25.0
    policy = RetryPolicy(max_attempts=50, strategy=strategy, delay=delay, max_delay=10.0)
    assert retry_delay(policy, attempt, random.Random(0)) == pytest.approx(expected)


def test_default_policy_delay() -> None:
    assert retry_delay(RetryPolicy(), 1, random.Random(0)) == 1.0


def test_zero_delay() -> None:
    policy = RetryPolicy(max_attempts=3, strategy="exponential", delay=0.0, jitter="full")
    assert retry_delay(policy, 2, random.Random(1)) == 0.0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("strategy, attempt, max_delay, bound", [
    ("fixed", 1, None, 5.0),
    ("exponential", 1, None, 5.0),
    ("exponential", 3, None, 20.0),
    ("exponential", 6, 60.0, 60.0),
])
def test_full_jitter_is_bounded_by_the_unjittered_delay(seed: int, strategy: str, attempt: int,
                                                        max_delay: float | None, bound: float) -> None:
    plain = RetryPolicy(max_attempts=10, strategy=strategy, delay=5.0, max_delay=max_delay)
    jittered = plain.model_copy(update={"jitter": "full"})
    assert retry_delay(plain, attempt, random.Random(seed)) == pytest.approx(bound)
    rng = random.Random(seed)
    samples = [retry_delay(jittered, attempt, rng) for _ in range(200)]
    assert all(0.0 <= s <= bound for s in samples)
    assert len(set(samples)) > 100  # actually random
    assert max(samples) > bound * 0.8 and min(samples) < bound * 0.2  # spread over the whole range
    # Same seed, same delays: replays are deterministic.
    again = random.Random(seed)
    assert [retry_delay(jittered, attempt, again) for _ in range(200)] == samples


def test_jitter_none_does_not_consume_randomness() -> None:
    rng = random.Random(3)
    retry_delay(RetryPolicy(max_attempts=3, delay=4.0), 1, rng)
    assert rng.random() == random.Random(3).random()


@pytest.mark.parametrize("max_delay, expected", [(300.0, 300.0), (None, 86400.0)])
def test_exponential_delay_with_a_huge_attempt_is_capped(max_delay: float | None, expected: float) -> None:
    policy = RetryPolicy(max_attempts=5000, strategy="exponential", delay=1.0, backoff_multiplier=2.0,
                         max_delay=max_delay)
    assert retry_delay(policy, 2000, random.Random(0)) == expected


def test_exponential_delay_overflowing_to_inf_is_capped() -> None:
    # A product (not a power) overflowing to inf is caught by the isfinite guard.
    policy = RetryPolicy(max_attempts=10, strategy="exponential", delay=1e308, backoff_multiplier=10.0)
    assert retry_delay(policy, 2, random.Random(0)) == 86400.0
    capped = policy.model_copy(update={"max_delay": 42.0})
    assert retry_delay(capped, 2, random.Random(0)) == 42.0


# ------------------------------------------------------------------ is_retryable


@pytest.mark.parametrize("max_attempts, attempt, expected", [
    (1, 1, False),  # the default: no retry
    (3, 1, True), (3, 2, True), (3, 3, False), (3, 4, False),
    (10, 9, True), (10, 10, False),
])
def test_is_retryable_counts_attempts(max_attempts: int, attempt: int, expected: bool) -> None:
    assert is_retryable(RetryPolicy(max_attempts=max_attempts), attempt, "AnyError") is expected


@pytest.mark.parametrize("retryable_errors, error_type, attempt, expected", [
    (None, "ValueError", 1, True),
    (None, "TaskTimeout", 2, True),
    (("HttpError", "TaskTimeout"), "HttpError", 1, True),
    (("HttpError", "TaskTimeout"), "TaskTimeout", 2, True),
    (("HttpError", "TaskTimeout"), "ValueError", 1, False),
    (("HttpError",), "httperror", 1, False),  # error types are matched exactly
    (("HttpError",), "HttpError", 3, False),  # listed, but the attempts are used up
    ((), "HttpError", 1, False),  # an empty list retries nothing
])
def test_is_retryable_with_retryable_errors(retryable_errors, error_type: str, attempt: int, expected: bool) -> None:
    policy = RetryPolicy(max_attempts=3, retryable_errors=retryable_errors)
    assert is_retryable(policy, attempt, error_type) is expected


# ------------------------------------------------------------------ approval_timeout_outcome


@pytest.mark.parametrize("policy, expected", [
    (None, ("decide", "TIMED_OUT")),
    ({}, ("decide", "TIMED_OUT")),
    ({"action": "escalate", "to": ["boss"]}, ("decide", "TIMED_OUT")),  # escalation is not implemented yet
    ({"action": "auto_approve"}, ("decide", "APPROVED")),
    ({"action": "auto_reject"}, ("decide", "REJECTED")),
    ({"action": "fail"}, ("fail", "ApprovalTimeout")),
    ({"action": "something_else"}, ("decide", "TIMED_OUT")),
    ({"action": None}, ("decide", "TIMED_OUT")),
])
def test_approval_timeout_outcome(policy, expected) -> None:
    assert approval_timeout_outcome(policy) == expected


def test_every_approval_timeout_action_has_an_outcome() -> None:
    outcomes = {action: approval_timeout_outcome({"action": action}) for action in APPROVAL_TIMEOUT_ACTIONS}
    assert outcomes == {
        "escalate": ("decide", "TIMED_OUT"),
        "auto_approve": ("decide", "APPROVED"),
        "auto_reject": ("decide", "REJECTED"),
        "fail": ("fail", "ApprovalTimeout"),
    }


def test_an_approval_is_decided_by_its_quorum_and_a_rejection_quorum_wins():
    from statemachine.decisions import tally

    two = {"required_approvals": 2}
    approve, reject = {"decision": "APPROVED"}, {"decision": "REJECTED"}
    assert tally(two, [approve]) is None
    assert tally(two, [approve, approve]) == "APPROVED"
    assert tally(two, [approve, reject]) == "REJECTED"  # one rejection is enough by default
    assert tally({"required_rejections": 2}, [reject]) is None
    assert tally({}, []) is None


def test_the_typed_state_helpers_read_what_a_missing_value_means():
    from statemachine.state import catch_step, loop_total

    assert catch_step(None) is None and catch_step({"handler": "h@t", "state": "caught", "retry": False}) == "caught"
    assert loop_total(None) is None and loop_total({"total": 3}) == 3 and loop_total({"total": None}) is None
