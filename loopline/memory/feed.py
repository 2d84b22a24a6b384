"""The in-memory store's change stream: what a DynamoDB stream of the runs table is on AWS.

The store emits one record per write of a run or task item, with the item's old and new image
(``statemachine.history.image``: the attributes the history reads, in the stream's shape), in
write order. Local mode drains it into the same consumer HistoryFunction runs
(infra/history.py), off the thread that made the write: it peeks at the oldest records and
removes those it has handled. On a state directory the feed is a table of the same file,
written in the write's own transaction (loopline/sqlite/feed.py).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Protocol

from infra.ports import RunRecord, TaskRecord
from statemachine.history import image


class Feed(Protocol):
    """The feed as its consumer sees it: ChangeFeed, or SQLiteFeed (loopline/sqlite/feed.py)."""

    def peek(self, limit: int = 100) -> list[dict[str, Any]]: ...
    def done(self, records: list[dict[str, Any]]) -> None: ...
    def __len__(self) -> int: ...


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque()
        self._sequence = 0

    def emit(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """A write changed an item from ``old`` to ``new`` (None: absent)."""
        with self._lock:
            record = stream_record(self._sequence + 1, old, new)
            if record is not None:
                self._sequence += 1
                self._records.append(record)

    def peek(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records, oldest first, left in the feed until ``done``."""
        with self._lock:
            return [self._records[index] for index in range(min(limit, len(self._records)))]

    def done(self, records: list[dict[str, Any]]) -> None:
        """``records``, the oldest of the last ``peek`` (its first few, or all), are handled: removed.
        A record the consumer failed on stays first, as a stream's shard is retried from it."""
        with self._lock:
            for _ in records:
                self._records.popleft()

    def __len__(self) -> int:
        return len(self._records)


def stream_record(sequence: int, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """A write's record as a DynamoDB stream carries it (None for a write of nothing to nothing)."""
    image = new or old
    if image is None:
        return None
    return {
        "eventID": str(sequence),
        "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "SequenceNumber": f"{sequence:021d}",
                     "StreamViewType": "NEW_AND_OLD_IMAGES",
                     **({"OldImage": old} if old else {}), **({"NewImage": new} if new else {})}}


def run_image(run_id: str, run: RunRecord) -> dict[str, Any]:
    """A run item's image as the runs table's stream carries it (what the history reads)."""
    return image(run_id, "", run.status, 0, run.last_change,
                 {"workflow_id": run.workflow_id, "created_at": run.created_at, "ended_at": run.ended_at,
                  "plan_hash": run.plan_hash})


def task_image(run_id: str, task_id: str, task: TaskRecord) -> dict[str, Any]:
    return image(run_id, task_id, task.status, task.attempt, task.last_change,
                 {"started_at": task.started_at, "ended_at": task.ended_at, "waiting_for": task.waiting_for})
