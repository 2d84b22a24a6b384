"""The in-memory store's change stream: what a DynamoDB stream of the runs table is on AWS.

The store emits one record per write of a run or task item, with the item's old and new image
(``statemachine.history.image``: the attributes the history reads, in the stream's shape), in
write order. Local mode drains it into the same consumer HistoryFunction runs
(infra/history.py), off the thread that made the write.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from infra.ports import RunRecord, TaskRecord
from statemachine.history import image


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque()
        self._sequence = 0

    def emit(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """A write changed an item from ``old`` to ``new`` (None: absent)."""
        image = new or old
        if image is None:
            return
        with self._lock:
            self._sequence += 1
            self._records.append({
                "eventID": str(self._sequence),
                "eventName": "INSERT" if old is None else "REMOVE" if new is None else "MODIFY",
                "eventSource": "aws:dynamodb",
                "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "SequenceNumber": f"{self._sequence:021d}",
                             "StreamViewType": "NEW_AND_OLD_IMAGES",
                             **({"OldImage": old} if old else {}), **({"NewImage": new} if new else {})}})

    def take(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records, oldest first, removed from the feed."""
        with self._lock:
            return [self._records.popleft() for _ in range(min(limit, len(self._records)))]

    def put_back(self, records: list[dict[str, Any]]) -> None:
        """Records a consumer could not finish: delivered again first, in their order."""
        with self._lock:
            self._records.extendleft(reversed(records))

    def __len__(self) -> int:
        return len(self._records)


def run_image(run_id: str, run: RunRecord) -> dict[str, Any]:
    """A run item's image as the runs table's stream carries it (what the history reads)."""
    return image(run_id, "", run.status, 0, run.last_change,
                 {"workflow_id": run.workflow_id, "created_at": run.created_at, "ended_at": run.ended_at})


def task_image(run_id: str, task_id: str, task: TaskRecord) -> dict[str, Any]:
    return image(run_id, task_id, task.status, task.attempt, task.last_change,
                 {"started_at": task.started_at, "ended_at": task.ended_at, "waiting_for": task.waiting_for})
