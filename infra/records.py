"""The records the state store keeps and hands out: a run, a task item, a link's token, and the change a
conditional write makes to a task (infra/ports.py's StateStore takes and returns them). Plain mutable
dataclasses, as a database row is the reader's to change; infra/copies.py copies them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from statemachine.state import ApprovalRequest, AttemptEntry, Catch, LastChange, LoopState, RoleContext


@dataclass
class RunRecord:
    run_id: str
    plan_hash: str
    workflow_id: str
    status: str = "RUNNING"
    inputs: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    error: dict[str, Any] | None = None
    created_at: str = ""
    ended_at: str | None = None
    sinks_remaining: int = 0
    failed_tasks: frozenset[str] = frozenset()
    # Set once the flow is over: the compensation steps to run, as [task id, compensated task id]
    # pairs in order (then the finally tasks); None while the flow runs.
    end_comps: list[list[str]] | None = None
    halt: bool = False  # no new flow task may start (workflow timeout, cancel)
    cancelled: bool = False  # stopped by request: ends CANCELLED, compensation with on_cancel
    # A sub-workflow's run: where to report its end {"run", "plan", "task", "key", "attempt"}.
    parent: dict[str, Any] | None = None
    # How many times the run was redriven (infra/engine/redrive.py), and when last.
    redrives: int = 0
    redriven_at: str | None = None
    # A rewind under way (infra/engine/rewind.py): its epoch and the task it goes back to, set while the
    # ended run's items are reset, cleared when it reopens. None: no rewind under way.
    rewinding: int | None = None
    rewind_to: str | None = None
    # The tasks a rewind of a moving run discarded (infra/engine/rewind.py): a sink or a failure of one of
    # them counts only from an attempt stamped with the run's epoch, so a result from before the rewind that
    # arrives late is not counted (StateStore.record_sink_done, record_failure).
    fenced: frozenset[str] = frozenset()
    # Why the run's status last changed, written with the change (statemachine/history.py reads it
    # off the table's stream), and when a finished run expires (epoch seconds: the table's TTL).
    last_change: LastChange | None = None
    ttl: int | None = None


@dataclass
class TaskRecord:
    """One task (or block) of a run. A missing item reads as PENDING."""

    task_id: str
    status: str = "PENDING"
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: str | None = None
    ended_at: str | None = None
    lease_until: str | None = None
    # Incoming edges already applied (dependency ids) and their outcomes.
    resolved: frozenset[str] = frozenset()
    deps_ok: int = 0
    deps_failed: int = 0
    deps_skipped: int = 0
    forced_skip: bool = False
    # Values recorded when an attempt starts, so a replay evaluates the same now()/random().
    ctx_now: str | None = None
    ctx_seed: int | None = None
    # Durable waits: when a timer fires, and the nonce a link token is derived from.
    wake_at: str | None = None
    nonce: str | None = None
    waiting_for: str | None = None  # statemachine.status.WaitingFor
    # The shapes of these are typed in statemachine/state.py.
    approval: ApprovalRequest | None = None  # the request (title, approvers...) then the decision
    role_ctx: RoleContext | None = None  # a role instance's context (a handler's, an iteration's...)
    catch: Catch | None = None  # a caught failure: its handler and where that stands
    loop_state: LoopState | None = None  # a running loop's item count
    # A sub-workflow task's child run, the plan it runs and the inputs it was given.
    child_run: str | None = None
    child_plan: str | None = None
    child_inputs: dict[str, Any] | None = None
    parked: bool | None = None  # work that arrived while its run was PAUSED; resume starts it again
    # The redrive epoch that last reset this item (0: never). A message from an earlier epoch
    # (it carries a lower "epoch") is stale and must not start or advance the task.
    redrive: int = 0
    # A wait a migration kept (infra/engine/migration.py): the epoch its links were made at, older than the
    # migration's stamp in ``redrive``; those links still decide. None: its links are of ``redrive``.
    links_epoch: int | None = None
    # Votes recorded on a WAITING approval (each vote transaction adds one): a decision is written
    # only if no vote came in after the decider read them (TaskChange.votes).
    votes: int = 0
    # A code task's running attempt (infra/engine/code_tasks.py): the SHA-256 of the token its result
    # must carry (the token itself is never stored); set by each claim, kept after the attempt ends.
    token_hash: str | None = None
    # What the code of the attempt that ended last printed (stdout and stderr, cut to a bound).
    printed: str | None = None
    # What the attempt that started last was given: its configuration evaluated with env.* masked
    # (statemachine/shown_input.py); None when it has no expression (it reads as declared).
    shown_input: str | None = None
    # When the current attempt was claimed (started_at is the first attempt's), and the last few
    # ended attempts, each added by the write that ends it (infra/engine/attempt_log.py).
    attempt_started_at: str | None = None
    attempt_log: list[AttemptEntry] | None = None
    # Claimed by an invocation that carried on from the message of the edge that made it ready (it had
    # no exec message of its own): a redelivery of that message walks on through it (propagate.py).
    carried: bool | None = None
    # Reset by a rewind of a moving run: the dependencies (discarded with it) whose edges count only from an
    # attempt stamped with this item's epoch, not from one before the rewind (StateStore.resolve_edge).
    fenced: frozenset[str] = frozenset()
    # Why the item was last changed, written with the change: the run's history is read from it.
    last_change: LastChange | None = None


@dataclass(frozen=True)
class TokenRecord:
    token_hash: str
    run_id: str
    task_id: str
    attempt: int
    kind: str  # "callback" | "approval"
    plan_hash: str
    expires_at: int | None  # epoch seconds
    used_by: str | None = None
    approver: str | None = None  # an approval link is one approver's
    epoch: int = 0  # the task's redrive epoch when the link was made: a redrive voids older links


@dataclass(frozen=True)
class TaskChange:
    """A conditional task transition: applied only if the item is in one of ``from_status``
    (``None`` in the tuple means "item absent or PENDING") with ``attempt`` (when given)."""

    status: str
    from_status: tuple[str | None, ...]
    attempt: int | None = None  # expected current attempt; None = any
    set: dict[str, Any] = field(default_factory=dict)  # TaskRecord field -> new value
    lease_expired_before: str | None = None  # for RUNNING takeovers: lease_until < this
    votes: int | None = None  # expected vote count (TaskRecord.votes); None = any
    absent: bool = False  # applies only where the task has no item at all (not even a counted edge)
    # A hint, not a condition: the change was decided on a load that found no item. A store may write it
    # as a first write (DynamoStore: a PutItem, infra/aws/dynamo_items.py task_put) and, where an item
    # has appeared since, as the change it is; the outcome is the change's either way.
    likely_absent: bool = False
    # The item's epoch (TaskRecord.redrive) the change was decided on; None = any. A rewind that reset the
    # item since makes the write fail, however its status and attempt number look now.
    epoch: int | None = None


def refusal_record(current: TaskRecord, refusal: dict[str, Any], keep: int) -> TaskRecord:
    """The refusal record ``current`` (a missing item reads as PENDING) with one more ``refusal``
    (StateStore.record_refusal): what every store writes, so they all write the same."""
    count = current.attempt if current.status == "COMPLETED" else 0
    last = list((current.output or {}).get("last") or []) if count else []
    last = (last + [refusal])[-keep:] if keep > 0 else []
    return TaskRecord(current.task_id, status="COMPLETED", attempt=count + 1,
                      output={"count": count + 1, "last": last})
