"""History on the SQLite file: a run's history and the audit log outlive the process with the runs.

The same behaviour as InMemoryHistory and DynamoHistory (tests/component/test_history_contract.py):
an entry is kept once by its sort key (a change record delivered again is not kept twice), read in
sort-key order a page at a time. Entries are stored as the API shows them (statemachine/history.py).
Nothing expires here, as in memory: the state directory is removed to start fresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.ports import Page
from statemachine.history import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    HistoryEntry,
    Retention,
    decode_action,
    decode_entry,
    encode_action,
    encode_entry,
)

from .db import Database


class SQLiteHistory:
    def __init__(self, db: Database):
        self._db = db

    def append(self, entry: HistoryEntry, retention: Retention | None = None) -> bool:  # nothing expires here
        with self._db.write() as db:
            return db.execute("INSERT OR IGNORE INTO history (run_id, sort_key, entry) VALUES (?, ?, ?)",
                              (entry.run_id, entry.sort_key, _text(encode_entry(entry)))).rowcount == 1

    def append_all(self, entries: Sequence[HistoryEntry],
                   retention: Mapping[str, Retention | None] | None = None) -> list[bool]:  # nothing expires here
        """In one transaction: all kept, or none (nothing is kept part way)."""
        with self._db.write() as db:
            return [db.execute("INSERT OR IGNORE INTO history (run_id, sort_key, entry) VALUES (?, ?, ?)",
                               (entry.run_id, entry.sort_key, _text(encode_entry(entry)))).rowcount == 1
                    for entry in entries]

    def of_run(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page[HistoryEntry]:
        rows = self._db.rows(
            "SELECT entry FROM history WHERE run_id = ? AND sort_key > ? ORDER BY sort_key LIMIT ?",
            (run_id, cursor or "", limit + 1))
        return _page([decode_entry(run_id, json.loads(row[0])) for row in rows], limit)

    def record_action(self, entry: AuditEntry) -> bool:
        with self._db.write() as db:
            return db.execute("INSERT OR IGNORE INTO audit (sort_key, actor, action, entry) VALUES (?, ?, ?, ?)",
                              (entry.sort_key, entry.actor, entry.action.value,
                               _text(encode_action(entry)))).rowcount == 1

    def actions(self, actor: str | None = None, action: AuditAction | Iterable[AuditAction] | None = None,
                since: str | None = None, cursor: str | None = None, limit: int = 100, *, until: str | None = None,
                workflow_id: str | None = None, run_id: str | None = None) -> Page[AuditEntry]:
        query = AuditQuery.of(actor, action, since, until, workflow_id, run_id)
        where, args = ["sort_key > ?", "sort_key >= ?"], [cursor or "", query.since or ""]
        if query.until is not None:
            where.append("sort_key < ?")
            args.append(query.until)
        if query.actor is not None:
            where.append("actor = ?")
            args.append(query.actor)
        if query.actions:
            where.append(f"action IN ({', '.join('?' for _ in query.actions)})")
            args += sorted(a.value for a in query.actions)
        # The run and the workflow are read from the entry itself (the table has no columns for them: state
        # files written before they were kept need no migration, and their entries match neither).
        for field, value in (("run_id", query.run_id), ("workflow_id", query.workflow_id)):
            if value is not None:
                where.append(f"json_extract(entry, '$.{field}') = ?")
                args.append(value)
        rows = self._db.rows(
            f"SELECT entry FROM audit WHERE {' AND '.join(where)} ORDER BY sort_key LIMIT ?",
            (*args, limit + 1))
        return _page([decode_action(json.loads(row[0])) for row in rows], limit)


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _page(entries: list[Any], limit: int) -> Page[Any]:
    shown = entries[:limit]
    return Page(shown, shown[-1].sort_key if len(entries) > limit and shown else None)
