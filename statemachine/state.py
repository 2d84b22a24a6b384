"""The shapes of what a task's item keeps besides its status: typed, and stored as JSON maps.

They are ``TypedDict``s on purpose: the stores keep them as the JSON maps earlier releases wrote
(so items written before read the same), while the type checker holds every reader and writer
to one declared shape, here rather than in comments.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

CatchStep = Literal["pending", "caught", "uncaught", "retrying"]
Role = Literal["handler", "compensation", "finally", "iteration"]


class Catch(TypedDict):
    """A caught failure: the handler instance that runs for it, and where that stands."""

    handler: str  # the handler's item key (keys.instance_key)
    state: CatchStep  # pending: the handler runs; caught/uncaught: it ended; retrying: catch.retry
    retry: bool  # the failed task gets one more attempt after its handler ran


# A role instance's context, carried by its exec message and kept on its item: a handler's
# ("for": the failed task's key, "error"), a compensation's ("for": the compensated task,
# "index": its end step), a finally task's ("index"), a loop iteration's ("loop", "index", "item").
RoleContext = TypedDict("RoleContext", {
    "role": Role,
    "for": str,
    "error": dict[str, Any],
    "index": int,
    "loop": str,
    "item": Any,
}, total=False)


class AttemptEntry(TypedDict):
    """One ended attempt of a task, kept on its item (the last few: infra/engine/attempt_log.py),
    written by the same write that ends the attempt."""

    attempt: int
    started_at: str | None
    ended_at: str
    error: dict[str, Any] | None  # {"type", "message"}, or None for an attempt that succeeded


class LoopState(TypedDict):
    """A running loop: a for_each's item count (its list is kept in chunks), None for while loops;
    ``reopened_at``: the iteration a rewind into its body reopened it at (infra/engine/loop_rewind.py; in a
    loop whose iterations run in parallel, that iteration's end is the loop's: ``loop_steps.after_iteration``);
    ``folded``: its iterations have no item of their own, each is kept in its one body task's item
    (``loop_steps.folded_task``; absent in a loop started by an earlier release, which has them)."""

    total: int | None
    reopened_at: NotRequired[int]
    folded: NotRequired[bool]


class EscalationPolicy(TypedDict, total=False):
    action: Literal["escalate", "auto_approve", "auto_reject", "fail"]
    next_approvers: list[str]
    timeout: float | None


class ApprovalRequest(TypedDict, total=False):
    """A waiting approval's request, as rendered when it began; then its decision (``result``).
    A waiting callback's request is only its ``callback_id``, when it has one; an event wait's (a ``wait``
    task with ``config.event``, waiting as a callback) is its ``event``."""

    callback_id: str
    event: str

    title: str | None
    description: str | None
    details: Any
    approvers: list[str]  # this round's
    asked: list[str]  # everyone asked, over every round (escalation adds to it)
    round: int  # 0, then 1 once escalated
    required_approvals: int
    required_rejections: int
    timeout: Any
    reminder: float | None
    channels: list[str]
    escalation_policy: EscalationPolicy | None
    escalated_at: str
    gate: bool  # a `requires_approval` gate in front of a task (the task runs if approved)
    result: dict[str, Any]  # the decision, once made


def catch_step(catch: Catch | None) -> CatchStep | None:
    """Where a task's caught failure stands (None: its failure was not caught, or it did not fail)."""
    return catch["state"] if catch else None


def loop_total(state: LoopState | None) -> int | None:
    """A for_each's item count, once the loop has started (None: not started, or a while loop)."""
    return state["total"] if state else None


def reopened_at(state: LoopState | None) -> int | None:
    """The iteration a rewind into the loop's body reopened it at, or None."""
    return state.get("reopened_at") if state else None


class LastChange(TypedDict):
    """Why an item was last changed, written in the same write as the change (issue #11): the run's
    history is read off the runs table's stream from it, so recording it adds no write."""

    reason: str
    at: str  # the engine's clock when the change was decided (ISO 8601, UTC)
    cause_kind: str  # statemachine.events.CauseKind, or "" when no message or request was in hand
    cause_name: str
    cause_subject: str
    # A circuit breaker this change opened or closed (statemachine/circuit.py: "name:event"), on the
    # outcome of the attempt that did it; absent on every other change.
    circuit: NotRequired[str]
    # On an item a migration wrote again under its new version (kept, or re-evaluated): that version
    # (``id@version``). No task started or ended there, so the metrics count nothing for the write.
    migrated: NotRequired[str]
