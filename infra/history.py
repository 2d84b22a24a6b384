"""The history consumer: change records of the runs table in, history entries appended.

On AWS, HistoryFunction (functions/history/app.py) hands it each record of the runs table's
DynamoDB stream; in local mode the in-memory store's feed (loopline/memory/feed.py) hands it the
same records. What a change means is decided by ``statemachine.history.entries_of`` alone; the
history store keeps each entry once, so a record delivered twice (a retried batch) adds nothing.
The change's metric points (``statemachine.metrics.points_of``) are emitted here too, off the
worker's hot path, and only when the change added an entry: a redelivered record counts once.
A task's points are labelled with its run's workflow and its task type, which the task item does
not carry, from the ``TaskContext`` (cached reads of the run and its plan, docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

from statemachine.history import Retention, entries_of
from statemachine.metrics import labelled, points_of, task_item_of

from .ports import History, Metrics, TaskContext


class HistoryRecorder:
    def __init__(self, history: History, metrics: Metrics, context: TaskContext):
        self.history = history
        self.metrics = metrics
        self.context = context

    def record(self, change: dict[str, Any]) -> int:
        """Append the entries of one change record (a stream record's ``dynamodb`` part); returns how
        many were new. A storage error is raised: the record is then retried, not lost (and its
        metrics, not emitted yet, are emitted then)."""
        points = points_of(change)
        task = task_item_of(change)
        # Labelled before the entries are appended: were the look-up to fail after, the retried record
        # would find its entries kept and emit nothing. Most changes have no points, so no look-up;
        # one that has mostly finds its run and plan cached.
        if points and task is not None:
            labels = self.context.of(*task)
            points = labelled(points, labels.workflow, labels.task_type)
        entries = entries_of(change)
        # Each entry expires with its run's retention: its workflow's retention_policy, else the deployment's.
        keep = {run_id: _retention(self.context.retention(run_id)) for run_id in {e.run_id for e in entries}}
        written = sum(1 for entry in entries if self.history.append(entry, keep[entry.run_id]))
        if written:
            self.metrics.emit(points)
        return written


def _retention(seconds: float | None) -> Retention | None:
    """A workflow's retention_policy as a Retention; None: the history store's own (the deployment's)."""
    return Retention(seconds / 86_400) if seconds else None
