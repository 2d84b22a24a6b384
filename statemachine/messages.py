"""The work-queue messages, as one typed union with one encode and one decode.

Every message the engine sends (to the ready queue, or through a timer) is one of these values;
``encode`` turns it into the JSON object that travels and ``decode`` turns that object back,
refusing anything that is not a message of a known kind with the fields it needs. The wire
shape is the one earlier releases wrote (``{"k": kind, ...}``, optional fields left out when
empty), so messages in flight during an upgrade still decode.

Every message is safe to deliver more than once: the handler of each kind finds, from the state,
what a previous delivery did (docs/durability.md). ``epoch`` is the redrive stamp of the item a
message is about: a message of an older epoch than its item is stale (``is_stale``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeAlias


class Kind(StrEnum):
    START = "start"  # make a run durable and start its roots
    EXEC = "exec"  # run one attempt of one task (or carry a finished one on)
    WAKE = "wake"  # a wait task's timer came due
    TIMEOUT = "timeout"  # a callback's, approval's or sub-workflow's deadline came due
    RUN_TIMEOUT = "run_timeout"  # the workflow's own timeout came due
    CHILD_DONE = "child_done"  # a sub-workflow's run ended: its parent task may go on
    NOTIFY = "notify"  # tell one approver through one channel
    REMIND = "remind"  # remind the approvers who have not decided yet
    REDRIVE = "redrive"  # reopen a FAILED run from its failed tasks
    BRANCH_TIMEOUT = "branch_timeout"  # a parallel block's branch ran longer than parallelism.branch_timeout
    MIGRATE = "migrate"  # move a running run to another version of its workflow
    REWIND = "rewind"  # reopen an ended run from just before one of its tasks


@dataclass(frozen=True)
class ParentRef:
    """Where a sub-workflow's run reports its end: the parent's task item and attempt."""

    run: str
    plan: str
    task: str
    key: str
    attempt: int

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "plan": self.plan, "task": self.task, "key": self.key, "attempt": self.attempt}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ParentRef:
        return cls(_str(raw, "run"), _str(raw, "plan"), _str(raw, "task"), _str(raw, "key"), _int(raw, "attempt"))


@dataclass(frozen=True)
class Start:
    run: str
    plan: str
    inputs: dict[str, Any] = field(default_factory=dict)
    parent: ParentRef | None = None


@dataclass(frozen=True)
class Exec:
    """One attempt of the task item ``key`` (a role instance's or loop body's own key; the task id
    otherwise). ``ctx``: a role instance's context; ``watch``: a code task's watchdog, which looks
    at a running attempt and never advances a finished one; ``handed_back``: how often a worker
    without the time for it passed it on (infra/engine/budget.py)."""

    run: str
    plan: str
    task: str
    attempt: int
    key: str = ""
    ctx: dict[str, Any] | None = None
    epoch: int = 0
    watch: bool = False
    handed_back: int = 0
    # In-process only, never encoded: the one edge that made a carried task ready, counted by its
    # claim instead of a write of its own (infra/engine/carry_on.py). Sent, the message goes without it.
    edge: tuple[str, str] | None = field(default=None, compare=False)
    # In-process only too: the item is known to have been absent a moment ago (a first task of an
    # iteration this invocation just created): loaded without a read, claimed only where it has none.
    unwritten: bool = field(default=False, compare=False)

    @property
    def item(self) -> str:
        return self.key or self.task


@dataclass(frozen=True)
class TimerFired:
    """A waiting task's timer: ``kind`` WAKE (a wait) or TIMEOUT (a link's or a child's deadline)."""

    kind: Kind
    run: str
    plan: str
    task: str
    attempt: int
    key: str = ""
    epoch: int = 0

    @property
    def item(self) -> str:
        return self.key or self.task


@dataclass(frozen=True)
class RunTimeout:
    run: str
    plan: str
    epoch: int = 0


@dataclass(frozen=True)
class ChildDone:
    parent: ParentRef
    child: str


@dataclass(frozen=True)
class Notify:
    run: str
    plan: str
    task: str
    key: str
    attempt: int
    round: int
    approver: str
    channel: str
    reason: str  # "request" | "escalation" | "reminder"
    epoch: int = 0
    tries: int = 1  # this is the n-th try of this notification


@dataclass(frozen=True)
class Remind:
    run: str
    plan: str
    task: str
    key: str
    attempt: int
    round: int
    epoch: int = 0


@dataclass(frozen=True)
class Redrive:
    run: str
    epoch: int


@dataclass(frozen=True)
class BranchTimeout:
    """Branch ``branch`` of parallel block ``block`` is due to end at ``at`` (ISO), counted from when its
    first task was claimed. ``suffix``: the members' key suffix inside a loop iteration (``@loop.3``)."""

    run: str
    plan: str
    block: str
    branch: str
    at: str
    suffix: str = ""
    epoch: int = 0


@dataclass(frozen=True)
class Migrate:
    """Move the run from the plan ``source`` to ``target`` as the run's epoch ``epoch`` (infra/engine/migration.py).
    ``paused``: the run was PAUSED (by an operator) when the migration was accepted, so a refusal leaves it so."""

    run: str
    epoch: int
    source: str
    target: str
    reason: str = ""
    paused: bool = False


@dataclass(frozen=True)
class Rewind:
    """Rewind ``run`` to just before task ``to`` as its epoch ``epoch``; ``by`` and ``reason``: who asked
    and why, for the run's history; ``compensate``: the discarded tasks' compensations run first;
    ``iteration``: for a task of a loop's body, the iteration it reopens (statemachine/loop_rewind.py)."""

    run: str
    epoch: int
    to: str
    by: str = ""
    reason: str = ""
    compensate: bool = False
    iteration: int | None = None


Message: TypeAlias = (Start | Exec | TimerFired | RunTimeout | ChildDone | Notify | Remind | Redrive | BranchTimeout
                      | Migrate | Rewind)


def encode(message: Message) -> dict[str, Any]:
    """The JSON object that travels (optional fields only when set, as earlier releases wrote)."""
    if isinstance(message, Exec):
        out: dict[str, Any] = {"k": Kind.EXEC.value, "run": message.run, "plan": message.plan,
                               "task": message.task, "attempt": message.attempt}
        if message.key and message.key != message.task:
            out["key"] = message.key
        if message.ctx:
            out["ctx"] = message.ctx
        if message.epoch:
            out["epoch"] = message.epoch
        if message.watch:
            out["watch"] = 1
        if message.handed_back:
            out["handed_back"] = message.handed_back
        return out
    if isinstance(message, TimerFired):
        out = {"k": message.kind.value, "run": message.run, "plan": message.plan, "task": message.task,
               "attempt": message.attempt}
        if message.key and message.key != message.task:
            out["key"] = message.key
        if message.epoch:
            out["epoch"] = message.epoch
        return out
    if isinstance(message, Start):
        out = {"k": Kind.START.value, "run": message.run, "plan": message.plan, "inputs": message.inputs}
        if message.parent is not None:
            out["parent"] = message.parent.to_dict()
        return out
    if isinstance(message, RunTimeout):
        out = {"k": Kind.RUN_TIMEOUT.value, "run": message.run, "plan": message.plan}
        if message.epoch:
            out["epoch"] = message.epoch
        return out
    if isinstance(message, ChildDone):
        return {"k": Kind.CHILD_DONE.value, **message.parent.to_dict(), "child": message.child}
    if isinstance(message, Notify):
        out = {"k": Kind.NOTIFY.value, "run": message.run, "plan": message.plan, "task": message.task,
               "key": message.key, "attempt": message.attempt, "round": message.round,
               "approver": message.approver, "channel": message.channel, "reason": message.reason,
               "epoch": message.epoch}
        if message.tries > 1:
            out["try"] = message.tries
        return out
    if isinstance(message, Remind):
        return {"k": Kind.REMIND.value, "run": message.run, "plan": message.plan, "task": message.task,
                "key": message.key, "attempt": message.attempt, "round": message.round, "epoch": message.epoch}
    if isinstance(message, Redrive):
        return {"k": Kind.REDRIVE.value, "run": message.run, "epoch": message.epoch}
    if isinstance(message, BranchTimeout):
        out = {"k": Kind.BRANCH_TIMEOUT.value, "run": message.run, "plan": message.plan, "block": message.block,
               "branch": message.branch, "at": message.at}
        if message.suffix:
            out["suffix"] = message.suffix
        if message.epoch:
            out["epoch"] = message.epoch
        return out
    if isinstance(message, Migrate):
        out = {"k": Kind.MIGRATE.value, "run": message.run, "epoch": message.epoch, "from": message.source,
               "to": message.target}
        if message.reason:
            out["reason"] = message.reason
        if message.paused:
            out["paused"] = True
        return out
    if isinstance(message, Rewind):
        out = {"k": Kind.REWIND.value, "run": message.run, "epoch": message.epoch, "to": message.to,
               "by": message.by, "reason": message.reason}
        if message.compensate:
            out["compensate"] = True
        if message.iteration is not None:
            out["iteration"] = message.iteration
        return out
    raise TypeError(f"not a message: {message!r}")


def decode(raw: Any) -> Message:
    """The message ``raw`` (a decoded JSON object) holds. ValueError: not a message of a known kind
    with the fields it needs (it can never be handled, however often it is delivered)."""
    if not isinstance(raw, dict):
        raise ValueError(f"a message is a JSON object, not {type(raw).__name__}")
    try:
        kind = Kind(str(raw.get("k")))
    except ValueError:
        raise ValueError(f"unknown message kind {raw.get('k')!r}") from None
    if kind is Kind.EXEC:
        return Exec(_str(raw, "run"), _str(raw, "plan"), _str(raw, "task"), _int(raw, "attempt"),
                    key=_opt_str(raw, "key"), ctx=_opt_dict(raw, "ctx"), epoch=_opt_int(raw, "epoch"),
                    watch=bool(raw.get("watch")), handed_back=_opt_int(raw, "handed_back"))
    if kind in (Kind.WAKE, Kind.TIMEOUT):
        return TimerFired(kind, _str(raw, "run"), _str(raw, "plan"), _str(raw, "task"), _int(raw, "attempt"),
                          key=_opt_str(raw, "key"), epoch=_opt_int(raw, "epoch"))
    if kind is Kind.START:
        parent = raw.get("parent")
        return Start(_str(raw, "run"), _str(raw, "plan"), _opt_dict(raw, "inputs") or {},
                     ParentRef.from_dict(parent) if isinstance(parent, dict) else None)
    if kind is Kind.RUN_TIMEOUT:
        return RunTimeout(_str(raw, "run"), _str(raw, "plan"), _opt_int(raw, "epoch"))
    if kind is Kind.CHILD_DONE:
        return ChildDone(ParentRef.from_dict(raw), _str(raw, "child"))
    if kind is Kind.NOTIFY:
        return Notify(_str(raw, "run"), _str(raw, "plan"), _str(raw, "task"), _str(raw, "key"), _int(raw, "attempt"),
                      _int(raw, "round"), _str(raw, "approver"), _str(raw, "channel"), _str(raw, "reason"),
                      epoch=_opt_int(raw, "epoch"), tries=_opt_int(raw, "try") or 1)
    if kind is Kind.REMIND:
        return Remind(_str(raw, "run"), _str(raw, "plan"), _str(raw, "task"), _str(raw, "key"), _int(raw, "attempt"),
                      _int(raw, "round"), epoch=_opt_int(raw, "epoch"))
    if kind is Kind.BRANCH_TIMEOUT:
        return BranchTimeout(_str(raw, "run"), _str(raw, "plan"), _str(raw, "block"), _str(raw, "branch"),
                             _str(raw, "at"), suffix=_opt_str(raw, "suffix"), epoch=_opt_int(raw, "epoch"))
    if kind is Kind.MIGRATE:
        return Migrate(_str(raw, "run"), _int(raw, "epoch"), _str(raw, "from"), _str(raw, "to"),
                       _opt_str(raw, "reason"), paused=raw.get("paused") is True)
    if kind is Kind.REWIND:
        return Rewind(_str(raw, "run"), _int(raw, "epoch"), _str(raw, "to"), _opt_str(raw, "by") or "",
                      _opt_str(raw, "reason") or "", compensate=raw.get("compensate") is True,
                      iteration=_int(raw, "iteration") if "iteration" in raw else None)
    return Redrive(_str(raw, "run"), _int(raw, "epoch"))


def handed_back(message: Exec) -> Exec:
    return replace(message, handed_back=message.handed_back + 1)


def retried(message: Notify) -> Notify:
    return replace(message, tries=message.tries + 1)


def _str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"a '{raw.get('k')}' message needs '{name}' (a string)")
    return value


def _opt_str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    return value if isinstance(value, str) else ""


def _int(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"a '{raw.get('k')}' message needs '{name}' (a number)")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"a '{raw.get('k')}' message needs '{name}' (a number)") from None


def _opt_int(raw: dict[str, Any], name: str) -> int:
    return _int(raw, name) if raw.get(name) is not None else 0


def _opt_dict(raw: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = raw.get(name)
    return value if isinstance(value, dict) else None
