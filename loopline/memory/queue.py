"""In-memory work queue and timers for local mode: the same messages, no AWS.

A consumer ``claim``s a message and ``ack``s it once handled; until then it is invisible for a
visibility timeout, after which it is delivered again (as SQS does; the SQLite queue keeps that
promise across a killed process, loopline/sqlite/queue.py; tests/component/test_queue_contract.py
holds both to it).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, Callable, NamedTuple, Protocol

from infra.ports import Clock

# How long a claimed message stays invisible: a consumer that has not acked it by then is taken for dead.
VISIBILITY_SECONDS = 30.0


class Delivery(NamedTuple):
    """A claimed message: its body, and the receipt that acks it."""

    receipt: int
    body: str


class Receiving(ABC):
    """What a queue with ``claim`` and ``ack`` offers on top of them (both local queues)."""

    @abstractmethod
    def claim(self) -> Delivery | None: ...

    @abstractmethod
    def ack(self, delivery: Delivery) -> None: ...

    def read(self, body: str) -> dict[str, Any]:
        return json.loads(body)

    def receive_body(self) -> str | None:
        """The next due message's body, acked at once (for a consumer that needs no second chance)."""
        delivery = self.claim()
        if delivery is None:
            return None
        self.ack(delivery)
        return delivery.body

    def receive(self) -> dict[str, Any] | None:
        body = self.receive_body()
        return None if body is None else json.loads(body)


class LocalQueue(Protocol):
    """A queue as local mode drives it: InMemoryQueue, or SQLiteQueue (loopline/sqlite/queue.py)."""

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...
    def send_many(self, messages: list[dict[str, Any]]) -> None: ...
    def send_at(self, at: datetime, message: dict[str, Any]) -> None: ...
    def read(self, body: str) -> dict[str, Any]: ...
    def claim(self) -> Delivery | None: ...
    def ack(self, delivery: Delivery) -> None: ...
    def receive_body(self) -> str | None: ...
    def receive(self) -> dict[str, Any] | None: ...
    def next_due(self) -> datetime | None: ...
    def wait(self, seconds: float) -> None: ...
    def __len__(self) -> int: ...


class InMemoryQueue(Receiving):
    """``on_send``: called after each send (local mode's doorbell: a sleeping pump wakes)."""

    def __init__(self, clock: Clock, on_send: Callable[[], None] | None = None,
                 visibility_seconds: float = VISIBILITY_SECONDS):
        self._clock = clock
        self._on_send = on_send
        self._visibility = timedelta(seconds=visibility_seconds)
        self._heap: list[tuple[datetime, int, str]] = []
        self._in_flight: dict[int, tuple[datetime, str]] = {}  # claimed, not acked: receipt -> (visible again, body)
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a send wakes a consumer waiting for one

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.send_at(self._clock.now() + timedelta(seconds=delay_seconds), message)

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.send(message)

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

    def claim(self) -> Delivery | None:
        """The next visible message, invisible for the visibility timeout until it is acked."""
        with self._lock:
            now = self._clock.now()
            for receipt, (visible_at, body) in list(self._in_flight.items()):
                if visible_at <= now:  # its consumer never acked it: deliver it again, in its place
                    del self._in_flight[receipt]
                    heapq.heappush(self._heap, (visible_at, receipt, body))
            if not self._heap or self._heap[0][0] > now:
                return None
            _, receipt, body = heapq.heappop(self._heap)
            self._in_flight[receipt] = (now + self._visibility, body)
            return Delivery(receipt, body)

    def ack(self, delivery: Delivery) -> None:
        """The message is handled: it is never delivered again."""
        with self._lock:
            self._in_flight.pop(delivery.receipt, None)

    def next_due(self) -> datetime | None:
        """When the next message becomes visible (a delayed one, or one in flight coming back)."""
        with self._lock:
            times = [visible_at for visible_at, _ in self._in_flight.values()]
            if self._heap:
                times.append(self._heap[0][0])
            return min(times) if times else None

    def __len__(self) -> int:
        return len(self._heap) + len(self._in_flight)


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
