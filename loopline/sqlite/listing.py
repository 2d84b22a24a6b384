"""RunQueries on SQLite: the runs table's indexes, searched, never scanned.

``runs_by_status`` (status, created_at, run_id), ``runs_by_workflow`` (workflow_id, created_at,
run_id) and ``runs_by_created`` (created_at, run_id), declared in loopline/sqlite/db.py: each
orders a page as the listing does (newest first, ties by run id), so a page reads its own rows
plus one, whatever the table holds, and a count reads the index entries of its window only.
The rules of a page are the port's (infra/listing.py); tests/component/test_run_queries_contract.py
checks every statement's plan for an index.
"""

from __future__ import annotations

import json
from typing import Any

from infra.listing import RunPage, RunQuery, RunSummary, newest_first
from statemachine.status import RunStatus

from .db import Database


class SQLiteRunQueries:
    def __init__(self, db: Database):
        self._db = db

    def list_runs(self, query: RunQuery) -> RunPage:
        where, args = _window(query.workflow_id, query.since, query.until)
        if query.status is not None:
            where.append("status = ?")
            args.append(query.status.value)
        if query.after is not None:
            where.append("(created_at, run_id) < (?, ?)")
            args += [query.after.created_at, query.after.run_id]
        rows = self._db.rows(
            "SELECT run_id, workflow_id, status, created_at, json_extract(record, '$.ended_at'), "
            "json_extract(record, '$.parent') FROM runs" + _where(where)
            + " ORDER BY created_at DESC, run_id DESC LIMIT ?", (*args, query.limit + 1))
        return newest_first([_summary(*row) for row in rows], query.limit)

    def count_runs(self, workflow_id: str | None = None, since: str | None = None,
                   until: str | None = None) -> dict[str, int]:
        counts = {status.value: 0 for status in RunStatus}
        where, args = _window(workflow_id, since, until)
        if workflow_id is None:
            # Each status's stretch of the status index, in the window: never every run's entry.
            where.insert(0, f"status IN ({','.join('?' * len(RunStatus))})")
            args[:0] = [status.value for status in RunStatus]
        rows = self._db.rows("SELECT status, COUNT(*) FROM runs" + _where(where) + " GROUP BY status", args)
        for status, count in rows:
            counts[status] = count
        return counts


def _window(workflow_id: str | None, since: str | None, until: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for condition, value in (("workflow_id = ?", workflow_id), ("created_at >= ?", since), ("created_at < ?", until)):
        if value is not None:
            where.append(condition)
            args.append(value)
    return where, args


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _summary(run_id: str, workflow_id: str, status: str, created_at: str, ended_at: str | None,
             parent: str | None) -> RunSummary:
    return RunSummary(run_id, workflow_id, status, created_at, ended_at, json.loads(parent) if parent else None)
