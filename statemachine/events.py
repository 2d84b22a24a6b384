"""Typed records of what changed in a run: one per applied transition, with why and what caused it.

The engine yields one :class:`TaskTransition` for every write that moves a task's item to a
status (or keeps it while changing what it waits for), and one :class:`RunTransition` for every
change of the run's own status. ``cause`` names the message or request whose handling made
the change. They are the raw material of a run's history; where they go is the deployment's
choice (infra/engine/journal.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .messages import (
    BranchTimeout,
    ChildDone,
    Exec,
    Message,
    Migrate,
    Notify,
    Redrive,
    Remind,
    Rewind,
    RunTimeout,
    Start,
    TimerFired,
)


class CauseKind(StrEnum):
    MESSAGE = "message"  # a work-queue message (or a timer's) handled by the worker
    RESULT = "result"  # a code task's result from the task runner
    REQUEST = "request"  # an API request: start, cancel, pause, resume, redrive, rewind, a link's answer
    DEAD_LETTER = "dead_letter"  # a message that failed every delivery


@dataclass(frozen=True)
class Cause:
    kind: CauseKind
    name: str  # the message's kind, the request's action
    subject: str = ""  # what it was about: "task b attempt 2", a run id


@dataclass(frozen=True)
class TaskTransition:
    run_id: str
    item: str  # the task's item key (a role instance's or a loop iteration's own key)
    status: str
    previous: str | None  # the status it was read in (None: no item yet, i.e. PENDING)
    attempt: int
    reason: str
    at: str
    cause: Cause | None


@dataclass(frozen=True)
class RunTransition:
    run_id: str
    status: str
    previous: str | None  # None: the run did not exist
    reason: str
    at: str
    cause: Cause | None


Event = TaskTransition | RunTransition


def cause_of(message: Message) -> Cause:
    """The cause a message's handling is recorded under."""
    if isinstance(message, Exec):
        what = "watchdog" if message.watch else "exec"
        return Cause(CauseKind.MESSAGE, what, f"{message.item} attempt {message.attempt}")
    if isinstance(message, TimerFired):
        return Cause(CauseKind.MESSAGE, message.kind.value, f"{message.item} attempt {message.attempt}")
    if isinstance(message, ChildDone):
        return Cause(CauseKind.MESSAGE, "child_done", f"{message.parent.key} <- run {message.child}")
    if isinstance(message, (Notify, Remind)):
        return Cause(CauseKind.MESSAGE, "notify" if isinstance(message, Notify) else "remind", message.key)
    if isinstance(message, BranchTimeout):
        return Cause(CauseKind.MESSAGE, "branch_timeout", f"{message.block} branch {message.branch}{message.suffix}")
    if isinstance(message, (Start, RunTimeout, Redrive, Migrate, Rewind)):
        name = {Start: "start", RunTimeout: "run_timeout", Redrive: "redrive", Migrate: "migrate",
                Rewind: "rewind"}[type(message)]
        return Cause(CauseKind.MESSAGE, name, message.run)
    raise TypeError(f"not a message: {message!r}")
