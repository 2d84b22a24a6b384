"""WorkQueue and Timers on the SQLite file: local mode's messages survive the process.

A message is a row of ``messages``, visible from ``visible_at`` (microseconds since the epoch, so
rows order by time exactly). ``claim`` takes the first visible one and moves its ``visible_at``
a visibility timeout ahead in the same statement, so a consumer that dies before ``ack`` (which
deletes it) has it delivered again once the timeout has passed: what SQS does, here for a process
killed between receiving a message and finishing it. The same interface as loopline/memory/queue.py
(tests/component/test_queue_contract.py runs both).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from infra.ports import Clock
from loopline.memory.queue import VISIBILITY_SECONDS, Delivery, Receiving

from .db import Database

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


class SQLiteQueue(Receiving):
    """The queue ``name`` in ``db`` (local mode keeps its work queue and the task runner's results
    in one file). ``on_send``: called after each send (local mode's doorbell)."""

    def __init__(self, db: Database, name: str, clock: Clock, on_send: Callable[[], None] | None = None,
                 visibility_seconds: float = VISIBILITY_SECONDS):
        self._db = db
        self._name = name
        self._clock = clock
        self._on_send = on_send
        self._visibility = timedelta(seconds=visibility_seconds)
        self._arrived = threading.Condition()  # a send in this process wakes a consumer waiting for one

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.send_at(self._clock.now() + timedelta(seconds=delay_seconds), message)

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """All in one transaction: one commit (one fsync) for a fan-out's ready tasks."""
        now = self._clock.now()
        with self._db.write() as db:
            for message in messages:
                self.insert(db, now, json.dumps(message))
        self.sent()

    def send_at(self, at: datetime, message: dict[str, Any]) -> None:
        body = json.dumps(message)
        with self._db.write() as db:
            self.insert(db, at, body)
        self.sent()

    def insert(self, db: sqlite3.Connection, at: datetime, body: str) -> None:
        """Add a message within the caller's transaction (then ``sent``, once it is committed)."""
        db.execute("INSERT INTO messages (queue, body, visible_at) VALUES (?, ?, ?)", (self._name, body, _micros(at)))

    def sent(self) -> None:
        """Wake the consumers once the send is committed (in a batch, at its commit: before, no other
        connection would find the message)."""
        self._db.after_commit(self._wake)

    def _wake(self) -> None:
        with self._arrived:
            self._arrived.notify_all()
        if self._on_send is not None:
            self._on_send()

    def wait(self, seconds: float) -> None:
        """Block until a message is sent by this process or ``seconds`` pass."""
        with self._arrived:
            if len(self) == 0:
                self._arrived.wait(seconds)

    def claim(self) -> Delivery | None:
        """The next visible message, invisible for the visibility timeout until it is acked."""
        now = self._clock.now()
        with self._db.write() as db:
            row = db.execute(
                "UPDATE messages SET visible_at = ?, receives = receives + 1 WHERE id = "
                "(SELECT id FROM messages WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, id LIMIT 1) "
                "RETURNING id, body", (_micros(now + self._visibility), self._name, _micros(now))).fetchone()
        return Delivery(row[0], row[1]) if row else None

    def ack(self, delivery: Delivery) -> None:
        """The message is handled: it is never delivered again."""
        with self._db.write() as db:
            db.execute("DELETE FROM messages WHERE id = ?", (delivery.receipt,))

    def next_due(self) -> datetime | None:
        """When the next message becomes visible (a delayed one, or one in flight coming back)."""
        (first,) = self._db.rows("SELECT MIN(visible_at) FROM messages WHERE queue = ?", (self._name,))[0]
        return EPOCH + timedelta(microseconds=first) if first is not None else None

    def __len__(self) -> int:
        (count,) = self._db.rows("SELECT COUNT(*) FROM messages WHERE queue = ?", (self._name,))[0]
        return int(count)


class SQLiteTimers:
    """Like one-time schedules: a name is taken while its timer is pending and free once it is due.
    The name and the message are written in one transaction: a crash leaves both or neither."""

    def __init__(self, db: Database, queue: SQLiteQueue, clock: Clock):
        self._db = db
        self._queue = queue
        self._clock = clock

    def schedule(self, name: str, at: datetime, message: dict[str, Any]) -> None:
        body = json.dumps(message)
        with self._db.write() as db:
            row = db.execute("SELECT due FROM timers WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] >= _micros(self._clock.now()):  # still pending: a redelivery
                return
            db.execute("INSERT OR REPLACE INTO timers (name, due) VALUES (?, ?)", (name, _micros(at)))
            self._queue.insert(db, at, body)
        self._queue.sent()
