"""The lifecycle's statuses, as enums whose values are the strings stored and shown.

They are ``StrEnum``s on purpose: a stored status reads back as a plain string, and
``TaskStatus.RUNNING == "RUNNING"`` holds, so records written by any release compare
equal to these members and the API shows the same text it always did.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "PENDING"  # not started (a missing item reads as PENDING)
    READY = "READY"  # an approved gate: the task runs next
    RUNNING = "RUNNING"  # claimed by one attempt (under a lease)
    WAITING = "WAITING"  # a durable wait: timer, link, loop iterations or a child run
    RETRYING = "RETRYING"  # failed, its next attempt scheduled
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # starts nothing new; what arrives is parked until resume
    COMPENSATING = "COMPENSATING"  # the flow failed: its compensations run, then finally
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class WaitingFor(StrEnum):
    """What a WAITING task waits for."""

    TIMER = "timer"
    CALLBACK = "callback"
    APPROVAL = "approval"
    LOOP = "loop"  # its iterations
    CHILD = "child"  # a sub-workflow's run


# A task in one of these never changes again (short of a redrive).
TASK_ENDED = frozenset({TaskStatus.COMPLETED, TaskStatus.SKIPPED, TaskStatus.FAILED, TaskStatus.CANCELLED})
# Statuses a task can be stopped from (cancel, a poison message).
TASK_ALIVE = (None, TaskStatus.PENDING, TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.WAITING,
              TaskStatus.RETRYING)
# A run in one of these is over: nothing moves in it (short of a redrive).
RUN_ENDED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
# A run whose tasks may move: its flow, or its end steps.
RUN_MOVING = frozenset({RunStatus.RUNNING, RunStatus.COMPENSATING})
