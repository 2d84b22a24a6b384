"""Metrics: the pure reading of a runs-table change into typed metric points (issue #11 item 3).

The history consumer sees every write of a run or task item off the hot path (the table's stream
on AWS, the in-memory store's feed locally), so metrics are computed there from the same change
record :func:`statemachine.history.entries_of` reads, never in the worker. No store, no clock:
every time is one the images carry.

Dimensions: ``status`` is the item's new status; ``workflow`` is on the run item, so run points
carry it. A task item carries neither its run's workflow nor its task type (adding them would add
to every task write on the worker's hot path), so :func:`points_of` leaves both empty on task
points; the history consumer looks them up from the run and its plan (``infra/task_context.py``)
and applies them with :func:`labelled`. :func:`task_item_of` says which run and item to look up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .circuit import CircuitEvent, CircuitState, event_of_note
from .events import CauseKind
from .expressions.functions import parse_iso
from .history import RUN_ITEM, TASK_PREFIX, note_of, text_of
from .state import LastChange
from .status import RUN_ENDED, TASK_ENDED, RunStatus, TaskStatus, WaitingFor


class MetricUnit(StrEnum):
    """CloudWatch's unit names (the EMF edge passes them as they are)."""

    COUNT = "Count"
    SECONDS = "Seconds"
    BYTES = "Bytes"


class MetricName(StrEnum):
    RUNS_STARTED = "RunsStarted"
    RUNS_COMPLETED = "RunsCompleted"
    RUNS_FAILED = "RunsFailed"
    RUNS_CANCELLED = "RunsCancelled"
    RUN_DURATION = "RunDuration"  # seconds from created_at to ended_at
    TASK_DURATION = "TaskDuration"  # seconds from the last attempt's start to the task's end
    TASK_RETRIES = "TaskRetries"  # an attempt > 1 starting
    APPROVALS_WAITING = "ApprovalsWaiting"  # a task entering WAITING for an approval
    APPROVAL_DECISION_TIME = "ApprovalDecisionTime"  # seconds from the request to leaving the wait
    DEAD_LETTERS = "DeadLetters"  # a task failed by the dead-letter path
    CIRCUIT_OPENED = "CircuitOpened"  # a circuit breaker opened (or opened again after a failed trial)
    CIRCUIT_CLOSED = "CircuitClosed"  # a circuit breaker's trial succeeded
    RUNS_IN_PROGRESS = "RunsInProgress"  # a gauge: runs not ended, read from the store (statemachine/gauges.py)
    CHECKPOINT_SIZE = "CheckpointSize"  # the size of a completed task's item: its checkpoint (issue #13)


# Metrics whose point is a value at a moment (a gauge), not one more of something: never summed.
GAUGES = frozenset({MetricName.RUNS_IN_PROGRESS})


@dataclass(frozen=True)
class MetricPoint:
    """One observation: a count of 1 or a duration, and the dimensions it was seen with."""

    name: MetricName
    unit: MetricUnit
    value: float
    status: str
    workflow: str = ""  # "" where it is not known (a task point before it is labelled)
    task_type: str = ""  # a task's type (a block's kind); "" on run points and where not known
    breaker: str = ""  # a circuit breaker's name, on its points only

    @property
    def dimensions(self) -> dict[str, str]:
        """The dimensions the point has (empty ones left out)."""
        found = {"workflow": self.workflow, "task_type": self.task_type, "status": self.status,
                 "breaker": self.breaker}
        return {k: v for k, v in found.items() if v}


_RUN_ENDS = {RunStatus.COMPLETED: MetricName.RUNS_COMPLETED, RunStatus.FAILED: MetricName.RUNS_FAILED,
             RunStatus.CANCELLED: MetricName.RUNS_CANCELLED}


def points_of(change: dict[str, Any]) -> list[MetricPoint]:
    """The metric points of one change record (a stream record's ``dynamodb`` part). A redriven
    run coming back to RUNNING is not counted as started again."""
    new, old = change.get("NewImage"), change.get("OldImage")
    if not new or note_of(new) is None:
        return []  # a removal, or a write that noted no change (a counter)
    sort_key = text_of(change.get("Keys") or new, "sk")
    if sort_key == RUN_ITEM:
        return _run_points(old, new)
    if sort_key.startswith(TASK_PREFIX):
        return _task_points(old, new)
    return []


def task_item_of(change: dict[str, Any]) -> tuple[str, str] | None:
    """(run id, item key) of a change to a task item, None for any other change (the run's item)."""
    keys = change.get("Keys") or change.get("NewImage") or {}
    run_id, sort_key = text_of(keys, "pk"), text_of(keys, "sk")
    if run_id and sort_key.startswith(TASK_PREFIX):
        return run_id, sort_key[len(TASK_PREFIX):]
    return None


def labelled(points: list[MetricPoint], workflow: str, task_type: str) -> list[MetricPoint]:
    """``points`` with the workflow and task type set where given ("" keeps what a point has)."""
    return [replace(point, workflow=workflow or point.workflow, task_type=task_type or point.task_type)
            for point in points]


def _run_points(old: dict[str, Any] | None, new: dict[str, Any]) -> list[MetricPoint]:
    status, before = text_of(new, "status"), text_of(old, "status")
    workflow = text_of(new, "workflow_id")
    points = []
    if old is None:
        points.append(_count(MetricName.RUNS_STARTED, status, workflow))
    if status in RUN_ENDED and before not in RUN_ENDED:
        points.append(_count(_RUN_ENDS[RunStatus(status)], status, workflow))
        took = _seconds(text_of(new, "created_at"), text_of(new, "ended_at"))
        if took is not None:
            points.append(MetricPoint(MetricName.RUN_DURATION, MetricUnit.SECONDS, took, status, workflow))
    return points


def _task_points(old: dict[str, Any] | None, new: dict[str, Any]) -> list[MetricPoint]:
    status, before = text_of(new, "status") or TaskStatus.PENDING, text_of(old, "status") or TaskStatus.PENDING
    attempt, attempt_before = _number(new, "attempt"), _number(old, "attempt")
    note = note_of(new)
    if note is not None and note.get("migrated"):
        return []  # an item a migration wrote again, under the new version: nothing started or ended
    points = []
    if status == TaskStatus.RUNNING and attempt > 1 and attempt != attempt_before:
        points.append(_count(MetricName.TASK_RETRIES, status))
    waits = status == TaskStatus.WAITING and text_of(new, "waiting_for") == WaitingFor.APPROVAL
    waited = before == TaskStatus.WAITING and text_of(old, "waiting_for") == WaitingFor.APPROVAL
    if waits and not waited:
        points.append(_count(MetricName.APPROVALS_WAITING, status))
    if waited and not waits and note is not None:
        took = _seconds(text_of(old, "started_at"), note["at"])
        if took is not None:
            points.append(MetricPoint(MetricName.APPROVAL_DECISION_TIME, MetricUnit.SECONDS, took, status))
    if status in TASK_ENDED and before not in TASK_ENDED:
        took = _seconds(text_of(new, "started_at"), text_of(new, "ended_at"))
        if took is not None:
            points.append(MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, took, status))
        if status == TaskStatus.FAILED and note is not None and note["cause_kind"] == CauseKind.DEAD_LETTER:
            points.append(_count(MetricName.DEAD_LETTERS, status))
        if status == TaskStatus.COMPLETED:
            points.append(MetricPoint(MetricName.CHECKPOINT_SIZE, MetricUnit.BYTES, _item_bytes(new), status))
    return points + _circuit_points(note, note_of(old) if old else None)


def _circuit_points(note: LastChange | None, before: LastChange | None) -> list[MetricPoint]:
    """A circuit breaker's change of state, told by the outcome the attempt that made it wrote
    (infra/engine/circuits.py); once, for the write that made the note. Its status is the breaker's."""
    told = event_of_note(note.get("circuit", "")) if note is not None and note != before else None
    if told is None:
        return []
    name, event = told
    if event is CircuitEvent.CLOSED:
        return [MetricPoint(MetricName.CIRCUIT_CLOSED, MetricUnit.COUNT, 1, CircuitState.CLOSED, breaker=name)]
    return [MetricPoint(MetricName.CIRCUIT_OPENED, MetricUnit.COUNT, 1, CircuitState.OPEN, breaker=name)]


def _item_bytes(image: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, near enough: each attribute's name and its value's text (a
    value over the claim-check threshold counts as its reference, which is what the item holds)."""
    return sum(len(name.encode()) + len(json.dumps(value, separators=(",", ":")).encode())
               for name, value in image.items())


def _count(name: MetricName, status: str, workflow: str = "") -> MetricPoint:
    return MetricPoint(name, MetricUnit.COUNT, 1, status, workflow)


def _number(attrs: dict[str, Any] | None, name: str) -> int:
    value = (attrs or {}).get(name) or {}
    return int(value.get("N", 0)) if isinstance(value, dict) else 0


def _seconds(start: str, end: str) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO times); None when either is missing or unreadable."""
    began, ended = parse_iso(start), parse_iso(end)
    if began is None or ended is None:
        return None
    return max((ended - began).total_seconds(), 0.0)
