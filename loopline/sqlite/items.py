"""The SQLite store's rows: records as JSON, read and written inside one transaction.

A record is kept whole as one JSON column (the dataclass's fields, sets as sorted lists); the
columns beside it are the ones a query or a condition needs (a run's status, workflow and
creation time for the listing's indexes, a token's kind and use). ``Items`` is one transaction's
view: it reads and writes the rows, and keeps the old and new image of each run or task it
writes, for the change feed once the transaction is committed (loopline/memory/feed.py).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from infra.ports import RunRecord, TaskRecord, TokenRecord
from loopline.memory.feed import run_image, task_image

Image = dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


_SHAPES: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _shape(kind: type) -> tuple[tuple[str, ...], frozenset[str]]:
    """A record class's field names, and those whose default is None."""
    shape = _SHAPES.get(kind)
    if shape is None:
        fields = dataclasses.fields(kind)
        shape = _SHAPES[kind] = (tuple(field.name for field in fields),
                                 frozenset(field.name for field in fields if field.default is None))
    return shape


def encode(record: Any) -> str:
    # The fields one level down only (dataclasses.asdict would deep-copy every value first, the most
    # expensive step of a write); json walks the values. A field that is None where None is its
    # default is left out (most of a task's fields, most of the time): decoding gives it back, and
    # a record written whole by an earlier release reads the same. allow_nan=False: NaN is not JSON,
    # refused here as DynamoDB (and the in-memory store) refuse it.
    names, none_by_default = _shape(type(record))
    fields = {name: value for name in names
              if (value := getattr(record, name)) is not None or name not in none_by_default}
    return json.dumps(fields, default=_plain, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def decode_run(text: str) -> RunRecord:
    fields = json.loads(text)
    return RunRecord(**{**fields, "failed_tasks": frozenset(fields.get("failed_tasks") or ()),
                        "fenced": frozenset(fields.get("fenced") or ())})


def decode_task(text: str) -> TaskRecord:
    fields = json.loads(text)
    return TaskRecord(**{**fields, "resolved": frozenset(fields.get("resolved") or ()),
                         "fenced": frozenset(fields.get("fenced") or ())})


def decode_token(text: str) -> TokenRecord:
    return TokenRecord(**json.loads(text))


class Items:
    """The runs, tasks and tokens as one transaction on ``db`` sees and changes them."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.changes: list[tuple[Image | None, Image]] = []  # (old, new) of each run or task written

    def run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return decode_run(row[0]) if row else None

    def sinks_done(self, run_id: str) -> set[str]:
        row = self.db.execute("SELECT sinks_done FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return set(json.loads(row[0])) if row else set()

    def put_run(self, run: RunRecord, old: RunRecord | None, sinks_done: set[str] | None = None) -> None:
        """Write ``run`` (``old``: as it was, None if new); ``sinks_done`` replaces the counted sinks."""
        record = encode(run)
        if old is None:
            self.db.execute("INSERT INTO runs (run_id, status, workflow_id, created_at, record) VALUES (?, ?, ?, ?, ?)",
                             (run.run_id, run.status, run.workflow_id, run.created_at, record))
        else:
            self.db.execute("UPDATE runs SET status = ?, workflow_id = ?, created_at = ?, record = ? WHERE run_id = ?",
                             (run.status, run.workflow_id, run.created_at, record, run.run_id))
        if sinks_done is not None:
            self.db.execute("UPDATE runs SET sinks_done = ? WHERE run_id = ?",
                             (json.dumps(sorted(sinks_done)), run.run_id))
        self.changes.append((run_image(run.run_id, old) if old else None, run_image(run.run_id, run)))

    def task(self, run_id: str, task_id: str) -> TaskRecord | None:
        row = self.db.execute("SELECT record FROM tasks WHERE run_id = ? AND task_id = ?", (run_id, task_id)).fetchone()
        return decode_task(row[0]) if row else None

    def put_task(self, run_id: str, task: TaskRecord, old: TaskRecord | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO tasks (run_id, task_id, record) VALUES (?, ?, ?)",
                         (run_id, task.task_id, encode(task)))
        self.changes.append((task_image(run_id, task.task_id, old) if old else None,
                             task_image(run_id, task.task_id, task)))

    def token(self, token_hash: str) -> TokenRecord | None:
        row = self.db.execute("SELECT record FROM tokens WHERE token_hash = ?", (token_hash,)).fetchone()
        return decode_token(row[0]) if row else None

    def put_token(self, token: TokenRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO tokens (token_hash, kind, used_by, record) VALUES (?, ?, ?, ?)",
                         (token.token_hash, token.kind, token.used_by, encode(token)))
