"""StateStore on one SQLite file, with the conditional semantics of the in-memory and DynamoDB stores.

Each write is one transaction that reads the items it is conditional on, decides with the rules
the in-memory store uses (loopline/store_rules.py) and writes (loopline/sqlite/db.py: the write
lock is held from the first read, so no other thread or process writes in between). A refused
condition raises inside the transaction, which then writes nothing. Each write of a run or task
goes to the change feed in the same transaction (loopline/sqlite/feed.py), as the runs table's
stream carries it on AWS.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from infra.ports import (
    RunGone,
    RunRecord,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    Written,
    refusal_record,
)
from loopline.store_rules import (
    changed,
    check_change,
    edge_resolved,
    fenced_off,
    halted,
    may_migrate_task,
    may_reset,
    may_set_status,
    paused_to_migrate,
    reopened,
    reopened_moving,
    rewind_begun,
    switched,
)
from statemachine.circuit import Circuit
from statemachine.loop_steps import ended_iteration
from statemachine.state import LastChange
from statemachine.status import TaskStatus
from statemachine.versions import WorkflowVersion, version_key

from .circuits import SQLiteCircuits
from .db import Database
from .feed import SQLiteFeed
from .items import Items, decode_run, decode_task, decode_token


def _acts_outside(record: TaskRecord) -> bool:
    """Whether what follows this write may act outside the file on it: then it is committed at once,
    with the writes of its batch before it (loopline/sqlite/db.py). An attempt's claim (RUNNING under
    a lease), before its code, its request or its email goes out, so that a task that kills the
    process still counts its attempts; a wait (WAITING), before its links or notifications go out.
    A loop's iteration (RUNNING, no lease) is the file's own bookkeeping."""
    return record.status == TaskStatus.WAITING or (record.status == TaskStatus.RUNNING
                                                   and record.lease_until is not None)


class SQLiteStore:
    """``feed``: where each write of a run or task item is kept, in the write's transaction (local
    mode's history is read from it)."""

    def __init__(self, db: Database, feed: SQLiteFeed | None = None) -> None:
        self._db = db
        self._feed = feed
        self._circuits = SQLiteCircuits(db)

    @contextmanager
    def _items(self) -> Iterator[Items]:
        with self._db.write() as db:
            items = Items(db)
            yield items
            if self._feed is not None and items.changes:
                self._feed.keep(db, items.changes)

    # plans
    def put_plan(self, plan_hash: str, plan_json: str) -> bool:
        with self._items() as items:
            # content-addressed: a plan already stored under this hash is this plan
            return items.db.execute("INSERT OR IGNORE INTO plans (hash, body) VALUES (?, ?)",
                                    (plan_hash, plan_json)).rowcount == 1

    def get_plan(self, plan_hash: str) -> str | None:
        row = self._db.row("SELECT body FROM plans WHERE hash = ?", (plan_hash,))
        return row[0] if row else None

    # registry: a version is found by its sort key (1.0.0+a and 1.0.0+b are one version, as on DynamoDB)
    _VERSION = "SELECT workflow_id, version, hash, extra FROM workflows"

    def register_workflow(self, entry: WorkflowVersion) -> Written[WorkflowVersion]:
        with self._items() as items:  # read and insert under the write lock: one registration wins
            row = items.db.execute(f"{self._VERSION} WHERE workflow_id = ? AND version_key = ?",
                                   (entry.workflow_id, version_key(entry.version))).fetchone()
            if row is not None:
                return Written(False, _version(row))
            items.db.execute("INSERT INTO workflows (workflow_id, version, version_key, hash, extra) "
                             "VALUES (?, ?, ?, ?, ?)", (entry.workflow_id, entry.version, version_key(entry.version),
                                                        entry.plan_hash, json.dumps(entry.extra())))
            return Written(True, entry)

    def get_workflow(self, workflow_id: str, version: str) -> WorkflowVersion | None:
        row = self._db.row(f"{self._VERSION} WHERE workflow_id = ? AND version_key = ?",
                           (workflow_id, version_key(version)))
        return _version(row) if row else None

    def workflow_versions(self, workflow_id: str) -> Iterator[WorkflowVersion]:
        rows = self._db.rows(f"{self._VERSION} WHERE workflow_id = ? ORDER BY version_key DESC", (workflow_id,))
        return iter([_version(row) for row in rows])

    def list_workflows(self) -> list[WorkflowVersion]:
        return [_version(row) for row in self._db.rows(f"{self._VERSION} ORDER BY workflow_id, version_key")]

    def deprecate_workflow(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion | None:
        with self._items() as items:
            row = items.db.execute(f"{self._VERSION} WHERE workflow_id = ? AND version_key = ?",
                                   (workflow_id, version_key(version))).fetchone()
            if row is None:
                return None
            entry = _version(row).deprecate(at, reason)
            items.db.execute("UPDATE workflows SET extra = ? WHERE workflow_id = ? AND version = ?",
                             (json.dumps(entry.extra()), workflow_id, entry.version))
            return entry

    # runs
    def create_run(self, run: RunRecord) -> Written[RunRecord]:
        with self._items() as items:
            stored = items.run(run.run_id)
            if stored is not None:
                return Written(False, stored)
            items.put_run(run, None, sinks_done=set())
            return Written(True, copy.deepcopy(run))

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self._db.row("SELECT record FROM runs WHERE run_id = ?", (run_id,))
        return decode_run(row[0]) if row else None

    def load(self, run_id: str, task_ids: list[str]) -> tuple[RunRecord | None, dict[str, TaskRecord]]:
        with self._db.read() as db:
            run = db.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            marks = ",".join("?" * len(task_ids))
            rows = db.execute(f"SELECT task_id, record FROM tasks WHERE run_id = ? AND task_id IN ({marks})",
                              (run_id, *task_ids)).fetchall() if task_ids else []
        return (decode_run(run[0]) if run else None), {task_id: decode_task(record) for task_id, record in rows}

    def read_span(self, run_id: str, task_ids: list[str]) -> dict[str, TaskRecord]:
        if not task_ids:
            return {}
        marks = ",".join("?" * len(task_ids))
        rows = self._db.rows(f"SELECT task_id, record FROM tasks WHERE run_id = ? AND task_id IN ({marks})",
                             (run_id, *task_ids))
        return {task_id: decode_task(record) for task_id, record in rows}

    def list_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        rows = self._db.rows("SELECT task_id, record FROM tasks WHERE run_id = ?", (run_id,))
        return {task_id: decode_task(record) for task_id, record in rows}

    def ended_iterations(self, run_id: str, loop_id: str) -> int:
        # The keys that start with "<loop>." are those from "<loop>." up to "<loop>/" ("/" follows "."):
        # a range of the primary key. Only the status is read from each record, by SQLite.
        rows = self._db.rows("SELECT task_id, json_extract(record, '$.status') FROM tasks "
                             "WHERE run_id = ? AND task_id >= ? AND task_id < ?",
                             (run_id, f"{loop_id}.", f"{loop_id}/"))
        return sum(1 for task_id, status in rows if ended_iteration(task_id, loop_id, status))

    def finish_run(self, run_id: str, status: str, outputs: Any, error: dict | None, ended_at: str,
                   note: LastChange | None = None, expires: int | None = None) -> bool:
        with self._items() as items:
            run = _existing(items, run_id)
            if run.status not in ("RUNNING", "COMPENSATING"):
                return False
            items.put_run(replace(run, status=status, outputs=outputs, error=error, ended_at=ended_at,
                                  last_change=note or run.last_change, ttl=expires), run)
            return True

    def begin_end(self, run_id: str, comps: list[list[str]], status: str,
                  note: LastChange | None = None) -> RunRecord:
        with self._items() as items:
            run = _existing(items, run_id)
            if run.end_comps is None and run.status == "RUNNING":
                old, run = run, replace(run, end_comps=copy.deepcopy(comps), status=status,
                                        last_change=note or run.last_change)
                items.put_run(run, old)
            return run

    def set_run_status(self, run_id: str, status: str, expected: str, note: LastChange | None = None) -> bool:
        with self._items() as items:
            run = _existing(items, run_id)
            if not may_set_status(run, expected):
                return False
            items.put_run(replace(run, status=status, last_change=note or run.last_change), run)
            return True

    def halt_run(self, run_id: str, reason_id: str, error: dict, note: LastChange | None = None) -> RunRecord:
        with self._items() as items:
            run = _existing(items, run_id)
            stopped = halted(run, reason_id, error, note)
            items.put_run(stopped, run)
            return stopped

    def record_sink_done(self, run_id: str, task_id: str, epoch: int | None = None) -> RunRecord:
        with self._items() as items:
            run = _existing(items, run_id)
            done = items.sinks_done(run_id)
            if task_id in done or fenced_off(run.fenced, task_id, epoch, run.redrives):
                return run
            counted = replace(run, sinks_remaining=run.sinks_remaining - 1)
            items.put_run(counted, run, sinks_done=done | {task_id})
            return counted

    def record_failure(self, run_id: str, task_id: str, error: dict, epoch: int | None = None) -> None:
        with self._items() as items:
            run = _existing(items, run_id)
            if fenced_off(run.fenced, task_id, epoch, run.redrives):
                return
            items.put_run(replace(run, failed_tasks=run.failed_tasks | {task_id}, error=run.error or error), run)

    # tasks
    def change_task(self, run_id: str, task_id: str, change: TaskChange, exports: dict[str, Any] | None = None,
                    consume: TokenConsume | None = None) -> TaskRecord:
        with self._items() as items:
            current = items.task(run_id, task_id)
            run = items.run(run_id) if exports else None  # read only when written
            token = items.token(consume.token_hash) if consume is not None else None
            voted = consume.vote_on[0] if consume is not None and consume.vote_on is not None else None
            request = items.task(run_id, voted) if voted is not None else None
            # Every condition is checked before anything is written, as in a DynamoDB transaction.
            check_change(task_id, current, change, run, run_id, exports, consume, token, request)
            if request is not None:
                items.put_task(run_id, replace(request, votes=request.votes + 1), request)
            if consume is not None and token is not None:
                items.put_token(replace(token, used_by=consume.request_id))
            record = changed(current, task_id, change)
            items.put_task(run_id, record, current)
            if exports and run is not None:
                items.put_run(replace(run, variables={**run.variables, **exports}), run)
        if _acts_outside(record):
            self._db.flush()
        return record  # made here (its values copied from the change): the store keeps only its JSON

    def resolve_edge(self, run_id: str, task_id: str, dep_id: str, outcome: str,
                     epoch: int | None = None) -> Written[TaskRecord]:
        with self._items() as items:
            current = items.task(run_id, task_id)
            record = current or TaskRecord(task_id)
            counted = edge_resolved(record, dep_id, outcome, epoch)
            if counted is None:
                return Written(False, record)
            items.put_task(run_id, counted, current)
            return Written(True, counted)

    def record_refusal(self, run_id: str, record_id: str, refusal: dict[str, Any], keep: int) -> TaskRecord:
        with self._items() as items:
            current = items.task(run_id, record_id)
            record = refusal_record(current or TaskRecord(record_id), refusal, keep)
            items.put_task(run_id, record, current)
            return record

    # circuit breakers (circuits.py)
    def get_circuit(self, name: str) -> Circuit | None:
        return self._circuits.get_circuit(name)

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        return self._circuits.put_circuit(circuit)

    # tokens
    def put_token(self, token: TokenRecord) -> bool:
        with self._items() as items:
            if items.token(token.token_hash) is not None:
                return False  # already there, maybe used: never reset it
            items.put_token(token)
        self._db.flush()  # its link may be sent next: it works once it is out
        return True

    def get_token(self, token_hash: str) -> TokenRecord | None:
        row = self._db.row("SELECT record FROM tokens WHERE token_hash = ?", (token_hash,))
        return decode_token(row[0]) if row else None

    def unused_tokens(self, kind: str) -> list[TokenRecord]:
        rows = self._db.rows("SELECT record FROM tokens WHERE kind = ? AND used_by IS NULL", (kind,))
        return [decode_token(record) for (record,) in rows]

    # redrive and rewind
    def reset_task(self, run_id: str, task_id: str, epoch: int, keep: dict[str, Any] | None = None,
                   rewinding: bool = False) -> bool:
        with self._items() as items:
            run = _existing(items, run_id)
            current = items.task(run_id, task_id)
            if not may_reset(run, current, epoch, rewinding):
                return False
            # ``keep`` may say a status: a rewind into a loop's body writes a kept item again, stamped.
            fields = {"task_id": task_id, "status": "PENDING", **(keep or {}), "redrive": epoch}
            items.put_task(run_id, TaskRecord(**fields), current)
            return True

    def reopen_run(self, run_id: str, epoch: int, sinks_done: list[str], sinks_remaining: int,
                   now: str, note: LastChange | None = None, rewinding: bool = False) -> Written[RunRecord]:
        with self._items() as items:
            run = _existing(items, run_id)
            again = reopened(run, epoch, sinks_remaining, now, note, rewinding)
            if again is None:
                return Written(False, run)
            items.put_run(again, run, sinks_done=set(sinks_done))
            return Written(True, again)

    def begin_rewind(self, run_id: str, epoch: int, task_id: str, comps: list[list[str]] | None = None,
                     note: LastChange | None = None, moving: bool = False) -> Written[RunRecord]:
        with self._items() as items:
            run = _existing(items, run_id)
            marked = rewind_begun(run, epoch, task_id, comps, note, moving)
            if marked is None:
                return Written(False, run)
            items.put_run(marked, run)
            return Written(True, marked)

    def reopen_moving(self, run_id: str, epoch: int, gone: list[str], sinks: int, fenced: list[str],
                      now: str, note: LastChange | None = None) -> Written[RunRecord]:
        with self._items() as items:
            run = _existing(items, run_id)
            again = reopened_moving(run, items.sinks_done(run_id), epoch, gone, sinks, fenced, now, note)
            if again is None:
                return Written(False, run)
            items.put_run(again[0], run, sinks_done=again[1])
            return Written(True, again[0])


    # migration (infra/engine/migration.py)
    def migrate_task(self, run_id: str, record: TaskRecord, epoch: int, plan_hash: str,
                     expect: TaskRecord | None) -> bool:
        with self._items() as items:
            run = _existing(items, run_id)
            current = items.task(run_id, record.task_id)
            if not may_migrate_task(run, current, epoch, plan_hash, expect):
                return False
            items.put_task(run_id, record, current)
            return True

    def pause_to_migrate(self, run_id: str, epoch: int, plan_hash: str,
                         note: LastChange | None = None) -> Written[RunRecord]:
        with self._items() as items:
            run = _existing(items, run_id)
            paused = paused_to_migrate(run, epoch, plan_hash, note)
            if paused is None:
                return Written(False, run)
            items.put_run(paused, run)
            return Written(True, paused)

    def switch_plan(self, run_id: str, epoch: int, source: str, target: str, inputs: dict[str, Any],
                    variables: dict[str, Any], sinks_done: list[str], sinks_remaining: int,
                    note: LastChange | None = None) -> Written[RunRecord]:
        with self._items() as items:
            run = _existing(items, run_id)
            moved = switched(run, epoch, source, target, inputs, variables, sinks_remaining, note)
            if moved is None:
                return Written(False, run)
            items.put_run(moved, run, sinks_done=set(sinks_done))
            return Written(True, moved)

def _existing(items: Items, run_id: str) -> RunRecord:
    run = items.run(run_id)
    if run is None:
        raise RunGone(run_id)
    return run


def _version(row: Any) -> WorkflowVersion:
    workflow_id, version, plan_hash, extra = row
    return WorkflowVersion.from_stored(workflow_id, version, plan_hash, json.loads(extra or "{}"))
