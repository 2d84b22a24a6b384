"""The local work queues and timers, in memory (loopline/memory/queue.py) and on SQLite
(loopline/sqlite/queue.py), held to one contract: due time, then FIFO; a claimed message comes back
after its visibility timeout unless acked; timers idempotent by name. On SQLite also across a new
process's connection to the same file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from infra.clock import ManualClock
from loopline.memory.queue import VISIBILITY_SECONDS, InMemoryQueue, InMemoryTimers
from loopline.sqlite.db import Database
from loopline.sqlite.queue import SQLiteQueue, SQLiteTimers

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def queue(request: pytest.FixtureRequest, clock: ManualClock, tmp_path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryQueue(clock)
        return
    db = Database(tmp_path / "state.db")
    yield SQLiteQueue(db, "work", clock)
    db.close()


def timers_of(queue) -> Any:
    if isinstance(queue, SQLiteQueue):
        return SQLiteTimers(queue._db, queue, queue._clock)
    return InMemoryTimers(queue)


def drain(queue: Any) -> list[dict]:
    out = []
    while (message := queue.receive()) is not None:
        out.append(message)
    return out


def test_empty_queue(queue: Any) -> None:
    assert queue.receive() is None
    assert queue.next_due() is None
    assert len(queue) == 0


def test_messages_without_delay_come_out_fifo(queue: Any) -> None:
    for i in range(50):
        queue.send({"n": i})
    assert len(queue) == 50
    assert drain(queue) == [{"n": i} for i in range(50)]
    assert len(queue) == 0


def test_send_many_sends_each_at_once_in_order(queue: Any) -> None:
    queue.send_many([{"n": 1}, {"n": 2}, {"n": 3}])
    assert drain(queue) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_ordered_by_due_time_then_fifo(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": "late"}, 30)
    queue.send({"n": "soon-1"}, 10)
    queue.send({"n": "now-1"})
    queue.send({"n": "soon-2"}, 10)
    queue.send({"n": "now-2"}, 0)
    queue.send_at(START + timedelta(seconds=10), {"n": "soon-3"})
    queue.send_at(START + timedelta(seconds=5), {"n": "between"})
    assert drain(queue) == [{"n": "now-1"}, {"n": "now-2"}]
    clock.advance(60)
    assert [m["n"] for m in drain(queue)] == ["between", "soon-1", "soon-2", "soon-3", "late"]


def test_delayed_messages_are_invisible_until_due(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": 1}, 10)
    assert queue.receive() is None
    assert queue.next_due() == START + timedelta(seconds=10)
    clock.advance(9.999)
    assert queue.receive() is None
    clock.advance(0.001)  # due now
    assert queue.receive() == {"n": 1}
    assert queue.receive() is None
    assert queue.next_due() is None


def test_a_due_message_behind_an_undue_one_is_not_blocked(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": "later"}, 100)
    queue.send({"n": "first"}, 5)
    clock.advance(5)
    assert queue.receive() == {"n": "first"}
    assert queue.receive() is None
    assert len(queue) == 1


def test_send_at_in_the_past_is_due_at_once(queue: Any) -> None:
    queue.send_at(START - timedelta(days=1), {"n": "past"})
    queue.send({"n": "now"})
    assert drain(queue) == [{"n": "past"}, {"n": "now"}]  # due earlier: comes first


def test_messages_are_copies(queue: Any) -> None:
    message = {"list": [1, 2], "nested": {"x": "ü"}}
    queue.send(message)
    message["list"].append(3)
    received = queue.receive()
    assert received == {"list": [1, 2], "nested": {"x": "ü"}}
    assert received is not message


def test_messages_must_be_json(queue: Any) -> None:
    with pytest.raises(TypeError):
        queue.send({"when": START})
    assert len(queue) == 0


def test_concurrent_senders_lose_nothing(queue: Any) -> None:
    def send(worker: int) -> None:
        for i in range(200):
            queue.send({"w": worker, "i": i})

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    received = drain(queue)
    assert len(received) == 1600
    for worker in range(8):  # each sender's messages keep their order
        assert [m["i"] for m in received if m["w"] == worker] == list(range(200))


# ------------------------------------------------------------------ timers


def test_timer_delivers_at_its_time(queue: Any, clock: ManualClock) -> None:
    timers = timers_of(queue)
    timers.schedule("wake", START + timedelta(hours=3), {"k": "wake"})
    assert queue.receive() is None
    assert queue.next_due() == START + timedelta(hours=3)
    clock.advance(hours=3)
    assert queue.receive() == {"k": "wake"}


def test_timers_are_idempotent_by_name(queue: Any, clock: ManualClock) -> None:
    timers = timers_of(queue)
    timers.schedule("run-1/t/1/wake", START + timedelta(seconds=60), {"k": "first"})
    timers.schedule("run-1/t/1/wake", START + timedelta(seconds=60), {"k": "first"})
    timers.schedule("run-1/t/1/wake", START + timedelta(seconds=5), {"k": "second"})  # the first one stands
    timers.schedule("run-1/t/2/wake", START + timedelta(seconds=60), {"k": "other"})
    assert len(queue) == 2
    clock.advance(10)
    assert queue.receive() is None
    clock.advance(50)
    assert drain(queue) == [{"k": "first"}, {"k": "other"}]


def test_a_pending_timer_name_is_taken_and_a_fired_one_is_free(queue: Any, clock: ManualClock) -> None:
    """As a one-time EventBridge schedule that deletes itself once it has fired (the AWS adapter)."""
    timers = timers_of(queue)
    timers.schedule("t", START + timedelta(seconds=5), {"k": 1})
    timers.schedule("t", START + timedelta(seconds=9), {"k": 2})  # a redelivered handler: still pending
    clock.advance(10)
    assert drain(queue) == [{"k": 1}]
    timers.schedule("t", START + timedelta(seconds=20), {"k": 3})  # fired: the name is free again
    clock.advance(20)
    assert drain(queue) == [{"k": 3}]


def test_past_due_timer_is_delivered_at_once(queue: Any) -> None:
    timers_of(queue).schedule("late", START - timedelta(minutes=5), {"k": "late"})
    assert queue.receive() == {"k": "late"}


def test_timers_racing_on_one_name_schedule_once(queue: Any) -> None:
    timers = timers_of(queue)
    barrier = threading.Barrier(16)

    def schedule() -> None:
        barrier.wait()
        timers.schedule("same", START, {"k": "x"})

    threads = [threading.Thread(target=schedule) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert drain(queue) == [{"k": "x"}]


# ------------------------------------------------------------------ claims, acks and redelivery


def test_a_claimed_message_is_invisible_until_acked_or_its_timeout(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": 1})
    queue.send({"n": 2})
    first = queue.claim()
    assert json.loads(first.body) == {"n": 1}
    second = queue.claim()
    assert json.loads(second.body) == {"n": 2}
    assert queue.claim() is None and len(queue) == 2  # both in flight, neither gone
    queue.ack(second)
    assert len(queue) == 1
    assert queue.next_due() == START + timedelta(seconds=VISIBILITY_SECONDS)  # when the unacked one comes back
    clock.advance(VISIBILITY_SECONDS - 0.001)
    assert queue.claim() is None
    clock.advance(0.001)
    again = queue.claim()  # its consumer never acked it: delivered again
    assert json.loads(again.body) == {"n": 1}
    queue.ack(again)
    clock.advance(VISIBILITY_SECONDS * 2)
    assert queue.claim() is None and len(queue) == 0 and queue.next_due() is None


def test_an_acked_message_never_comes_back(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": 1})
    queue.ack(queue.claim())
    clock.advance(hours=1)
    assert queue.claim() is None and len(queue) == 0


def test_a_delayed_message_is_not_claimed_before_its_time(queue: Any, clock: ManualClock) -> None:
    queue.send({"n": "later"}, 10)
    clock.advance(9)
    assert queue.claim() is None
    clock.advance(1)
    assert json.loads(queue.claim().body) == {"n": "later"}


def test_sqlite_messages_and_timers_outlive_the_process(tmp_path, clock: ManualClock) -> None:
    """What a killed process leaves: its unacked message, a delayed one and a pending timer, all
    there for the next process to open the file (a new Database: new connections)."""
    db = Database(tmp_path / "state.db")
    queue = SQLiteQueue(db, "work", clock)
    queue.send({"n": "in flight"})
    queue.send({"n": "delayed"}, 60)
    SQLiteTimers(db, queue, clock).schedule("wake", START + timedelta(seconds=120), {"n": "timer"})
    assert queue.claim() is not None  # claimed, never acked: the process dies here
    db.close()

    again = Database(tmp_path / "state.db")
    queue = SQLiteQueue(again, "work", clock)
    others = SQLiteQueue(again, "results", clock)
    assert len(queue) == 3 and len(others) == 0
    SQLiteTimers(again, queue, clock).schedule("wake", START + timedelta(seconds=5), {"n": "again"})  # pending
    clock.advance(120)
    assert [m["n"] for m in drain(queue)] == ["in flight", "delayed", "timer"]
    again.close()
