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

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from statemachine.history import HistoryEntry, Retention, entries_of, run_seen
from statemachine.metrics import MetricPoint, labelled, points_of, task_item_of

from .ports import History, HistoryUnfinished, Metrics, StoreError, TaskContext

log = logging.getLogger(__name__)


class HistoryRecorder:
    def __init__(self, history: History, metrics: Metrics, context: TaskContext):
        self.history = history
        self.metrics = metrics
        self.context = context

    def record(self, change: dict[str, Any]) -> int:
        """Append the entries of one change record (a stream record's ``dynamodb`` part); returns how
        many were new. A storage error is raised: the record is then retried, not lost (and its
        metrics, not emitted yet, are emitted then)."""
        # Labelled before the entries are appended: were the look-up to fail after, the retried record
        # would find its entries kept and emit nothing. Most changes have no points, so no look-up;
        # one that has mostly finds its run and plan cached.
        points = self._points(change)
        entries = entries_of(change)
        # Each entry expires with its run's retention: its workflow's retention_policy, else the deployment's.
        keep = self._retentions(entries)
        written = sum(1 for entry in entries if self.history.append(entry, keep[entry.run_id]))
        if written:
            self.metrics.emit(points)
        return written

    def record_all(self, changes: Sequence[dict[str, Any]]) -> Recorded:
        """Append the entries of a batch of change records in one ``append_all`` (a few requests
        instead of one per entry), in order, as far as they go: a record whose entries or labels cannot
        be made, or whose entries are not kept for certain, stops the batch there (``Recorded.failed``),
        and it and the records after it are delivered again. Each record's metrics are emitted as
        ``record`` emits them: once the entries are kept, and only if one of them was new."""
        prepared: list[tuple[list[MetricPoint], list[HistoryEntry]]] = []
        keep: dict[str, Retention | None] = {}
        failed: int | None = None
        for index, change in enumerate(changes):
            try:
                points, of_one = self._points(change), list(entries_of(change))
                keep.update(self._retentions([e for e in of_one if e.run_id not in keep]))
                prepared.append((points, of_one))
            except Exception:  # a record that cannot be read (or labelled now) is retried, not lost
                log.exception("history: change record %d of %d could not be read", index, len(changes))
                failed = index
                break
        entries = [entry for _, of_one in prepared for entry in of_one]
        try:
            new = self.history.append_all(entries, keep)
        except HistoryUnfinished as unfinished:
            log.exception("history: %d of %d entries kept for certain", len(unfinished.new), len(entries))
            new = unfinished.new
        except StoreError:
            log.exception("history: none of %d entries kept for certain", len(entries))
            new = []
        written = end = 0
        for index, (points, of_one) in enumerate(prepared):
            if end + len(of_one) > len(new):
                failed = index  # not all of its entries kept: it comes again, and what follows it
                break
            added = sum(new[end:end + len(of_one)])
            end += len(of_one)
            written += added
            if added:
                self.metrics.emit(points)
        return Recorded(written, failed)

    def _retentions(self, entries: Sequence[HistoryEntry]) -> dict[str, Retention | None]:
        """Each run's retention (its workflow's retention_policy, else None: the deployment's), by run id."""
        return {run_id: _retention(self.context.retention(run_id)) for run_id in {e.run_id for e in entries}}

    def _points(self, change: dict[str, Any]) -> list[MetricPoint]:
        run = run_seen(change)
        if run is not None:  # the run's workflow and plan as of now: a migration's new plan replaces the old
            self.context.saw(run)
        points = points_of(change)
        task = task_item_of(change)
        if points and task is not None:
            labels = self.context.of(*task)
            points = labelled(points, labels.workflow, labels.task_type)
        return points


@dataclass(frozen=True)
class Recorded:
    """What ``record_all`` did: how many entries were new, and the first record not done (None: all
    were), from which the batch is delivered again."""

    written: int
    failed: int | None


def _retention(seconds: float | None) -> Retention | None:
    """A workflow's retention_policy as a Retention; None: the history store's own (the deployment's)."""
    return Retention(seconds / 86_400) if seconds else None
