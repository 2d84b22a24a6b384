"""The change feed gets the same records from the SQLite store (loopline/sqlite/feed.py, in the write's
transaction) as from the in-memory one (loopline/memory/feed.py): each write of a run or task item
once, with its old and new image, in write order, and nothing for a refused write. Local mode's
history and metrics are read from it."""

from __future__ import annotations

import pytest

from infra.ports import LostRace, RunRecord, TaskChange
from loopline.memory.feed import ChangeFeed
from loopline.memory.store import InMemoryStore
from loopline.sqlite.db import Database
from loopline.sqlite.feed import SQLiteFeed
from loopline.sqlite.store import SQLiteStore

NOTE = {"reason": "started", "cause": {"kind": "message", "name": "exec", "subject": "a"}, "at": "2030-01-01T00:00:01Z"}


def _writes(store) -> None:
    store.put_plan("h", "{}")  # not an item of the runs table: no record
    store.create_run(RunRecord("r", "h", "wf", created_at="2030-01-01T00:00:00.000Z", sinks_remaining=1))
    store.create_run(RunRecord("r", "h", "wf"))  # there already: nothing written
    store.change_task("r", "a", TaskChange(status="RUNNING", from_status=(None,),
                                           set={"attempt": 1, "started_at": "2030-01-01T00:00:01Z",
                                                "last_change": NOTE}))
    with pytest.raises(LostRace):
        store.change_task("r", "a", TaskChange(status="RUNNING", from_status=(None,)))
    store.change_task("r", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), set={"output": 1}),
                      exports={"v": 2})
    store.resolve_edge("r", "b", "a", "ok")
    store.resolve_edge("r", "b", "a", "ok")  # counted before: nothing written
    store.record_sink_done("r", "b")
    store.finish_run("r", "COMPLETED", {"x": 1}, None, "2030-01-01T00:00:02Z")


def test_sqlite_store_feeds_what_the_memory_store_feeds(tmp_path) -> None:
    memory_feed = ChangeFeed()
    _writes(InMemoryStore(memory_feed))
    db = Database(tmp_path / "state.db")
    sqlite_feed = SQLiteFeed(db)
    _writes(SQLiteStore(db, sqlite_feed))
    memory, sqlite = memory_feed.peek(1000), sqlite_feed.peek(1000)
    assert [r["eventName"] for r in memory] == ["INSERT", "INSERT", "MODIFY", "MODIFY", "INSERT", "MODIFY", "MODIFY"]
    assert sqlite == memory
    for feed in (memory_feed, sqlite_feed):  # handled: gone; the rest stays, oldest first
        feed.done(feed.peek(3))
        assert len(feed) == 4 and feed.peek(1)[0]["eventID"] == "4"


def test_the_sqlite_feed_outlives_the_process(tmp_path) -> None:
    db = Database(tmp_path / "state.db")
    _writes(SQLiteStore(db, SQLiteFeed(db)))
    db.close()
    again = SQLiteFeed(Database(tmp_path / "state.db"))  # a new process: the changes it did not handle are there
    assert len(again) == 7 and [r["eventName"] for r in again.peek(2)] == ["INSERT", "INSERT"]
