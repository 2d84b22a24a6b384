"""In-memory work queue and timers for local mode: the same messages, no AWS."""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from datetime import datetime, timedelta
from typing import Any, Callable

from infra.ports import Clock


class InMemoryQueue:
    """``on_send``: called after each send (local mode's doorbell: a sleeping pump wakes)."""

    def __init__(self, clock: Clock, on_send: Callable[[], None] | None = None):
        self._clock = clock
        self._on_send = on_send
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a send wakes a consumer waiting for one

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.send_at(self._clock.now() + timedelta(seconds=delay_seconds), message)

    def send_at(self, at: datetime, message: dict[str, Any]) -> None:
        # Serialised like an SQS body, so nothing relies on sharing objects with the sender.
        with self._lock:
            heapq.heappush(self._heap, (at, next(self._seq), json.dumps(message)))
            self._arrived.notify_all()
        if self._on_send is not None:
            self._on_send()

    def wait(self, seconds: float) -> None:
        """Block until a message is sent or ``seconds`` pass (a message sent by another thread, such as a
        task runner's result, wakes the consumer at once)."""
        with self._lock:
            if not self._heap:
                self._arrived.wait(seconds)

    def read(self, body: str) -> dict[str, Any]:
        return json.loads(body)

    def receive(self) -> dict[str, Any] | None:
        body = self.receive_body()
        return None if body is None else json.loads(body)

    def receive_body(self) -> str | None:
        """The next due message as its body text (what an SQS consumer gets)."""
        with self._lock:
            if self._heap and self._heap[0][0] <= self._clock.now():
                return heapq.heappop(self._heap)[2]
            return None

    def next_due(self) -> datetime | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


class InMemoryTimers:
    """Like one-time schedules: a name is taken while its timer is pending and free once it fired."""

    def __init__(self, queue: InMemoryQueue):
        self._queue = queue
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def schedule(self, name: str, at: datetime, message: dict[str, Any]) -> None:
        with self._lock:
            due = self._pending.get(name)
            if due is not None and due >= self._queue._clock.now():  # still pending: a redelivery
                return
            self._pending[name] = at
        self._queue.send_at(at, message)
