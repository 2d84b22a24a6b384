"""What one delivery of an exec message must do, from the state it finds (pure).

An exec message can arrive more than once, late, early, after a crash, after a redrive or while
another process runs the same attempt. The worker reads the run and the task's item, asks
:func:`decide_delivery`, and carries out the one step it names; only ``CLAIM`` runs anything,
and the claim itself is a conditional write that one delivery wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from .rewind import undoing
from .status import RUN_ENDED, TASK_ENDED, RunStatus, TaskStatus


class RunState(Protocol):
    """What the decision reads of the run (infra/ports.RunRecord has it)."""

    @property
    def status(self) -> str: ...
    @property
    def halt(self) -> bool: ...
    @property
    def rewinding(self) -> int | None: ...


class TaskState(Protocol):
    """What the decision reads of the task's item (infra/ports.TaskRecord has it)."""

    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def redrive(self) -> int: ...
    @property
    def token_hash(self) -> str | None: ...


class Step(StrEnum):
    IGNORE = "ignore"  # nothing to do: see ``why``
    CANCEL = "cancel"  # the run is stopping: the task is cancelled, nothing new starts
    PARK = "park"  # the run is paused: the task is marked for resume to start
    PROPAGATE = "propagate"  # the attempt ended before: carry its outcome on (a redelivery after a crash)
    ENSURE_WAIT = "ensure_wait"  # the task waits: make sure its links and timer exist
    SCHEDULE_RETRY = "schedule_retry"  # the attempt failed and its retry is due later: make sure it is scheduled
    REARM_WATCHDOG = "rearm_watchdog"  # a code task is out with the task runner: its watchdog stays armed
    BUSY = "busy"  # another process holds the attempt's lease: deliver again later
    CLAIM = "claim"  # start the attempt: claim it (one conditional write) and run it


class Claim(StrEnum):
    FRESH = "fresh"  # the first attempt of a task that never started
    RESUMED = "resumed"  # an approved gate's task, or a retry that came due
    TAKEOVER = "takeover"  # an attempt whose holder died: its lease has expired


@dataclass(frozen=True)
class Delivery:
    step: Step
    why: str
    claim: Claim | None = None


def decide_delivery(run: RunState | None, task: TaskState, *, attempt: int, epoch: int, watch: bool,
                    flow: bool, lease_until: datetime | None, now: datetime, role: str = "") -> Delivery:
    """``attempt``/``epoch``/``watch``: what the message says; ``flow``: the task is a flow task (not a
    role: a handler, a compensation, a finally task); ``lease_until``: the item's lease, if any; ``role``:
    the task's role (a compensation moves in a run a rewind holds PAUSED: statemachine/rewind.py)."""
    if run is None or run.status in RUN_ENDED:
        return Delivery(Step.IGNORE, "the run has ended" if run else "no such run")
    if epoch < task.redrive:
        return Delivery(Step.IGNORE, f"a message of redrive epoch {epoch}; the task was reset at {task.redrive}")
    ended = task.status in TASK_ENDED
    if run.halt and flow and not ended:
        return Delivery(Step.CANCEL, "the run is stopping")
    if run.status == RunStatus.PAUSED and not ended and task.status != TaskStatus.WAITING \
            and not undoing(run.status, run.rewinding, role):
        return Delivery(Step.PARK, "the run is paused")
    takeover = task.status == TaskStatus.RUNNING and task.attempt == attempt
    if watch and not takeover:
        return Delivery(Step.IGNORE, "the watched attempt is over")
    if ended:
        return Delivery(Step.PROPAGATE, f"the task is {task.status}")
    if task.status == TaskStatus.WAITING and task.attempt == attempt:
        return Delivery(Step.ENSURE_WAIT, "the task waits")
    if task.status == TaskStatus.RETRYING and task.attempt == attempt + 1:
        return Delivery(Step.SCHEDULE_RETRY, "the attempt failed and its retry is due later")
    if takeover and lease_until is not None and lease_until > now:
        if task.token_hash:
            return Delivery(Step.REARM_WATCHDOG, "the attempt is out with the task runner")
        return Delivery(Step.BUSY, f"attempt {attempt} is running elsewhere")
    if task.status == TaskStatus.PENDING and attempt == 1:
        return Delivery(Step.CLAIM, "the task is ready", Claim.FRESH)
    if task.status in (TaskStatus.READY, TaskStatus.RETRYING) and task.attempt == attempt:
        return Delivery(Step.CLAIM, f"attempt {attempt} is due", Claim.RESUMED)
    if takeover:
        return Delivery(Step.CLAIM, "the holder of the attempt's lease is gone", Claim.TAKEOVER)
    return Delivery(Step.IGNORE, f"attempt {attempt} is over: the task is {task.status} at attempt {task.attempt}")
