"""When a task was queued, started and finished, how long it took, and its ended attempts, as
GET /runs/{id} shows them beside each task's status (views.py) and each loop iteration's.

Nothing here is written by a transition of its own: ``started_at``, ``ended_at`` and the attempt log
are set by the writes that start and end an attempt, and ``queued_at`` (when the task became ready
to run) is derived: the end of its last dependency, or the run's start (or last redrive) for a task
that waits for none.
"""

from __future__ import annotations

from typing import Any

from statemachine.plan import Node

from ..clock import parse_iso
from ..ports import RunRecord, TaskRecord


def duration_ms(start: str | None, end: str | None) -> int | None:
    """Milliseconds from ``start`` to ``end`` (None unless both are known)."""
    if not start or not end:
        return None
    return max(0, round((parse_iso(end) - parse_iso(start)).total_seconds() * 1000))


def queued_at(run: RunRecord, node: Node | None, latest: dict[str, TaskRecord], rec: TaskRecord) -> str | None:
    if rec.started_at is None and rec.ended_at is None:
        return None  # never became ready, as far as its item tells
    if node is None or not node.deps:
        return run.redriven_at or run.created_at
    ends = [end for d in node.deps if d in latest and (end := latest[d].ended_at)]
    return max(ends) if ends else run.redriven_at or run.created_at


def task_times(run: RunRecord, node: Node | None, latest: dict[str, TaskRecord], rec: TaskRecord) -> dict[str, Any]:
    """The timing fields of one task's entry in the run's view."""
    return {
        "queued_at": queued_at(run, node, latest, rec),
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "duration_ms": duration_ms(rec.started_at, rec.ended_at),
        "attempt_log": [{**entry, "duration_ms": duration_ms(entry.get("started_at"), entry.get("ended_at"))}
                        for entry in rec.attempt_log or []],
    }
