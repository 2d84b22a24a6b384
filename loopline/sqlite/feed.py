"""The change feed in the state file: each write of a run or task item is kept in the write's own
transaction, so a change is in the feed exactly when it is in the store, and a process killed before
turning it into history leaves it for the next one (what a DynamoDB stream does for HistoryFunction).

The same interface as loopline/memory/feed.py's ChangeFeed (peek, done), and the same records: a
record's sequence number is its row's, unique in the file, so history entries made by different
processes never share a key. Two processes on one file may both handle a record; the history keeps
an entry once (History.append), so that repeats nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from loopline.memory.feed import stream_record

from .db import Database
from .items import Image


class SQLiteFeed:
    def __init__(self, db: Database):
        self._db = db

    def keep(self, db: sqlite3.Connection, changes: list[tuple[Image | None, Image]]) -> None:
        """Add a write's changes within its transaction ``db``."""
        db.executemany("INSERT INTO changes (old, new) VALUES (?, ?)",
                       [(json.dumps(old) if old else None, json.dumps(new)) for old, new in changes])

    def peek(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to ``limit`` records, oldest first, left in the feed until ``done``."""
        rows = self._db.rows("SELECT seq, old, new FROM changes ORDER BY seq LIMIT ?", (limit,))
        records = [stream_record(seq, json.loads(old) if old else None, json.loads(new)) for seq, old, new in rows]
        return [record for record in records if record is not None]

    def done(self, records: list[dict[str, Any]]) -> None:
        """``records`` are handled: removed (by their sequence numbers, whoever else peeked at them)."""
        if records:
            with self._db.write() as db:
                db.executemany("DELETE FROM changes WHERE seq = ?", [(int(r["eventID"]),) for r in records])

    def __len__(self) -> int:
        (count,) = self._db.rows("SELECT COUNT(*) FROM changes")[0]
        return int(count)
