"""Pure decisions of the engine: given the plan, a task's state and one event, what follows.

Nothing here does I/O or reads a clock; time and randomness come in as arguments.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .plan import CatchSpec, Node, RetryPolicy
from .state import ApprovalRequest, EscalationPolicy

Readiness = Literal["run", "skip", "cancel"]
EdgeOutcome = Literal["ok", "failed", "skipped", "force_skip"]


@dataclass(frozen=True)
class DepCounts:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    forced_skip: bool = False


def one_edge(outcome: str) -> DepCounts:
    """The counts of a task whose one dependency finished as ``outcome`` (an EdgeOutcome)."""
    return DepCounts(ok=int(outcome == "ok"), failed=int(outcome == "failed"),
                     skipped=int(outcome in ("skipped", "force_skip")), forced_skip=outcome == "force_skip")


def edge_fields(dep_id: str, outcome: str) -> dict[str, Any]:
    """The fields of a task item on which only the edge from ``dep_id`` has been counted, as ``outcome``
    (what the store's resolve_edge writes on an item without one, written instead by a claim)."""
    counts = one_edge(outcome)
    fields: dict[str, Any] = {"resolved": frozenset({dep_id})}
    for name, value in (("deps_ok", counts.ok), ("deps_failed", counts.failed), ("deps_skipped", counts.skipped),
                        ("forced_skip", counts.forced_skip)):
        if value:
            fields[name] = value
    return fields


def edge_outcome(dep: Node, dep_status: str, dep_output: Any, dependent: Node, caught: bool = False) -> EdgeOutcome:
    """What the finished node ``dep`` means for one of its dependents.

    A condition's untaken branch is skipped outright (``force_skip``), whatever
    other dependencies the member task has: a branch task must never run just
    because an unrelated dependency succeeded. A caught failure counts as a
    success (dsl.md: dependents run with the handler's output).
    """
    if caught and dep_status == "FAILED":
        return "ok"
    if dep.id in dependent.order_deps:
        return "ok"  # an ordering-only edge (max_concurrent): its outcome does not matter
    if dep.kind == "condition" and dependent.branch_of and dependent.branch_of[0] == dep.id:
        taken = "then" if (isinstance(dep_output, dict) and dep_output.get("result")) else "else"
        if dep_status != "COMPLETED" or dependent.branch_of[1] != taken:
            return "force_skip"
        return "ok"
    if dep_status == "COMPLETED":
        return "ok"
    if dep_status == "SKIPPED":
        return "skipped"
    return "failed"  # FAILED, or CANCELLED because something upstream failed


def readiness(node: Node, counts: DepCounts) -> Readiness:
    """Trigger rule of a node whose dependencies have all finished."""
    if counts.forced_skip:
        return "skip"
    total = counts.ok + counts.failed + counts.skipped
    if total == 0:
        return "run"
    ok, failed, skipped = counts.ok, counts.failed, counts.skipped
    rule = node.trigger_rule
    if rule == "all_done":
        return "run"
    if rule == "one_failed":
        return "run" if failed else "skip"
    if rule == "none_failed":
        return "cancel" if failed else "run"
    if rule == "all_success":
        if failed:
            return "cancel"
        return "run" if skipped == 0 else "skip"
    if rule == "one_success":
        if ok:
            return "run"
        return "cancel" if failed else "skip"
    # none_failed_min_one_success (the default)
    if failed:
        return "cancel"
    return "run" if ok else "skip"


def is_retryable(policy: RetryPolicy, attempt: int, error_type: str) -> bool:
    if attempt >= policy.max_attempts:
        return False
    if policy.retryable_errors is None:
        return True
    return error_type in policy.retryable_errors


def retry_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
    if policy.strategy == "custom" and policy.delays:
        delay = policy.delays[min(max(attempt, 1), len(policy.delays)) - 1]  # past the list: its last wait
    elif policy.strategy == "exponential":
        try:
            delay = policy.delay * (policy.backoff_multiplier ** max(attempt - 1, 0))
        except OverflowError:  # a float power this large raises instead of giving inf
            delay = math.inf
    else:
        delay = policy.delay
    if policy.max_delay is not None:
        delay = min(delay, policy.max_delay)
    if not math.isfinite(delay):
        delay = policy.max_delay if policy.max_delay is not None else 86400.0
    if policy.jitter == "full":
        delay = rng.uniform(0, delay)
    return max(delay, 0.0)


def wait_until(config: dict[str, Any], now: datetime, parse_duration, parse_time) -> datetime:
    """When a ``wait`` task wakes: ``duration`` after now, or the ``until`` timestamp."""
    if config.get("until") is not None:
        return parse_time(config["until"])
    return now + timedelta(seconds=parse_duration(config.get("duration", 0)))


APPROVAL_TIMEOUT_ACTIONS = ("escalate", "auto_approve", "auto_reject", "fail")


def tally(request: ApprovalRequest, votes: list[dict[str, Any]]) -> str | None:
    """An approval's decision from its votes: REJECTED once ``required_rejections`` rejected, APPROVED
    once ``required_approvals`` approved (a rejection quorum wins a tie), None while neither is reached."""
    rejected = sum(1 for v in votes if v["decision"] == "REJECTED")
    approved = sum(1 for v in votes if v["decision"] == "APPROVED")
    if rejected >= request.get("required_rejections", 1):
        return "REJECTED"
    if approved >= request.get("required_approvals", 1):
        return "APPROVED"
    return None


def approval_timeout_outcome(policy: EscalationPolicy | None) -> tuple[str, str]:
    """What an approval's final deadline means: ("decide", DECISION) or ("fail", error type).

    ``escalate`` is handled before this (one more round for ``next_approvers``);
    an escalated request whose second deadline passes is TIMED_OUT.
    """
    action = policy.get("action") if policy else None
    if action == "auto_approve":
        return "decide", "APPROVED"
    if action == "auto_reject":
        return "decide", "REJECTED"
    if action == "fail":
        return "fail", "ApprovalTimeout"
    return "decide", "TIMED_OUT"


def approval_output(decision: str, approver: str | None, comments: Any, data: Any, decided_at: str) -> dict:
    return {
        "approved": decision == "APPROVED",
        "decision": decision,
        "approver": approver,
        "comments": comments,
        "data": data,
        "decided_at": decided_at,
    }


def match_catch(clauses: tuple[CatchSpec, ...], error_type: str) -> CatchSpec | None:
    """The first ``error_handling.catch`` clause for an error type (no types listed: every type)."""
    for clause in clauses:
        if not clause.error_types or error_type in clause.error_types or "*" in clause.error_types:
            return clause
    return None
