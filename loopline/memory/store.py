"""In-memory StateStore with the same conditional semantics as the DynamoDB one (local mode, tests).

Each refused write reports the outcome the DynamoDB store does (infra/ports.py): a lost race
as a value or LostRace, a missing run as RunGone; tests/component/test_store_contract.py and
test_store_outcomes.py run both stores through the same cases.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Callable

from infra.copies import record_copy
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
from statemachine.versions import WorkflowVersion, version_key

from .circuits import MemoryCircuits
from .feed import ChangeFeed, run_image, task_image

# Records leave the store as copies, as they would from a database (a run's inputs shared: they never change).
_copy = record_copy


class _Items(dict):
    """The store's run or task items: every assignment is a write, reported to the change feed
    with the item's old and new image, as a DynamoDB stream reports each write of the runs table."""

    def __init__(self, feed: ChangeFeed | None, image_of: Callable[[Any, Any], dict[str, Any]]):
        super().__init__()
        self._feed = feed
        self._image_of = image_of

    def __setitem__(self, key, value) -> None:
        old = self.get(key)
        super().__setitem__(key, value)
        if self._feed is not None:
            self._feed.emit(self._image_of(key, old) if old is not None else None, self._image_of(key, value))


def _keyed_task_image(key: tuple[str, str], task: TaskRecord) -> dict[str, Any]:
    return task_image(key[0], key[1], task)


class InMemoryStore:
    """``feed``: where each write of a run or task item is reported (local mode's history)."""

    def __init__(self, feed: ChangeFeed | None = None) -> None:
        self._lock = threading.RLock()
        self._plans: dict[str, str] = {}
        self._runs: dict[str, RunRecord] = _Items(feed, run_image)
        self._tasks: dict[tuple[str, str], TaskRecord] = _Items(feed, _keyed_task_image)
        self._tokens: dict[str, TokenRecord] = {}
        self._sinks_done: dict[str, set[str]] = {}
        # Keyed by the version's sort key, as DynamoDB's sk: 1.0.0+a and 1.0.0+b are one version.
        self._workflows: dict[tuple[str, str], WorkflowVersion] = {}
        self._circuits = MemoryCircuits()

    # plans
    def put_plan(self, plan_hash: str, plan_json: str) -> bool:
        with self._lock:
            if plan_hash in self._plans:
                return False  # content-addressed: the plan stored under this hash is this plan
            self._plans[plan_hash] = plan_json
            return True

    def get_plan(self, plan_hash: str) -> str | None:
        return self._plans.get(plan_hash)

    # registry
    def register_workflow(self, entry: WorkflowVersion) -> Written[WorkflowVersion]:
        key = (entry.workflow_id, version_key(entry.version))
        with self._lock:
            stored = self._workflows.get(key)
            if stored is not None:
                return Written(False, stored)
            self._workflows[key] = entry
            return Written(True, entry)

    def get_workflow(self, workflow_id: str, version: str) -> WorkflowVersion | None:
        return self._workflows.get((workflow_id, version_key(version)))

    def workflow_versions(self, workflow_id: str) -> Iterator[WorkflowVersion]:
        with self._lock:
            mine = sorted((k, v) for k, v in self._workflows.items() if k[0] == workflow_id)
        return iter([v for _, v in reversed(mine)])

    def list_workflows(self) -> list[WorkflowVersion]:
        with self._lock:
            return [v for _, v in sorted(self._workflows.items())]

    def deprecate_workflow(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion | None:
        key = (workflow_id, version_key(version))
        with self._lock:
            stored = self._workflows.get(key)
            if stored is None:
                return None
            self._workflows[key] = stored.deprecate(at, reason)
            return self._workflows[key]

    # runs
    def _run(self, run_id: str) -> RunRecord:
        """The stored run (held under the lock), or RunGone."""
        run = self._runs.get(run_id)
        if run is None:
            raise RunGone(run_id)
        return run

    def create_run(self, run: RunRecord) -> Written[RunRecord]:
        with self._lock:
            if run.run_id in self._runs:
                return Written(False, _copy(self._runs[run.run_id]))
            self._runs[run.run_id] = _copy(run)
            return Written(True, _copy(run))

    def runs(self) -> list[RunRecord]:
        """Every run as stored, for the listing (loopline/memory/listing.py); never changed by the caller."""
        with self._lock:
            return list(self._runs.values())  # records are replaced on each write, never changed in place

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return _copy(self._runs.get(run_id))

    def load(self, run_id: str, task_ids: list[str]) -> tuple[RunRecord | None, dict[str, TaskRecord]]:
        with self._lock:
            found = {t: _copy(self._tasks[(run_id, t)]) for t in task_ids if (run_id, t) in self._tasks}
            return _copy(self._runs.get(run_id)), found

    def read_span(self, run_id: str, task_ids: list[str]) -> dict[str, TaskRecord]:
        with self._lock:
            return {t: _copy(self._tasks[(run_id, t)]) for t in task_ids if (run_id, t) in self._tasks}

    def list_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        with self._lock:
            return {t: _copy(r) for (rid, t), r in self._tasks.items() if rid == run_id}

    def ended_iterations(self, run_id: str, loop_id: str) -> int:
        with self._lock:
            return sum(1 for (rid, t), r in self._tasks.items()
                       if rid == run_id and ended_iteration(t, loop_id, r.status))

    def finish_run(self, run_id: str, status: str, outputs: Any, error: dict | None, ended_at: str,
                   note: LastChange | None = None, expires: int | None = None) -> bool:
        with self._lock:
            run = self._run(run_id)
            if run.status not in ("RUNNING", "COMPENSATING"):
                return False
            json.dumps(outputs, allow_nan=False)  # the DynamoDB store keeps JSON; refuse here what it would refuse
            self._runs[run_id] = replace(run, status=status, outputs=_copy(outputs), error=error, ended_at=ended_at,
                                         last_change=note or run.last_change, ttl=expires)
            return True

    def begin_end(self, run_id: str, comps: list[list[str]], status: str,
                  note: LastChange | None = None) -> RunRecord:
        with self._lock:
            run = self._run(run_id)
            if run.end_comps is None and run.status == "RUNNING":
                run = self._runs[run_id] = replace(run, end_comps=_copy(comps), status=status,
                                                    last_change=note or run.last_change)
            return _copy(run)

    def set_run_status(self, run_id: str, status: str, expected: str, note: LastChange | None = None) -> bool:
        with self._lock:
            run = self._run(run_id)
            if not may_set_status(run, expected):
                return False
            self._runs[run_id] = replace(run, status=status, last_change=note or run.last_change)
            return True

    def halt_run(self, run_id: str, reason_id: str, error: dict, note: LastChange | None = None) -> RunRecord:
        with self._lock:
            run = self._run(run_id)
            run = self._runs[run_id] = halted(run, reason_id, error, note)
            return _copy(run)

    def record_sink_done(self, run_id: str, task_id: str, epoch: int | None = None) -> RunRecord:
        with self._lock:
            run = self._run(run_id)
            done = self._sinks_done.setdefault(run_id, set())
            if task_id not in done and not fenced_off(run.fenced, task_id, epoch, run.redrives):
                done.add(task_id)
                run = self._runs[run_id] = replace(run, sinks_remaining=run.sinks_remaining - 1)
            return _copy(run)

    def record_failure(self, run_id: str, task_id: str, error: dict, epoch: int | None = None) -> None:
        with self._lock:
            run = self._run(run_id)
            if fenced_off(run.fenced, task_id, epoch, run.redrives):
                return
            self._runs[run_id] = replace(
                run, failed_tasks=run.failed_tasks | {task_id}, error=run.error or _copy(error)
            )

    # tasks
    def change_task(self, run_id: str, task_id: str, change: TaskChange, exports=None,
                    consume: TokenConsume | None = None) -> TaskRecord:
        with self._lock:
            key = (run_id, task_id)
            current = self._tasks.get(key)
            # Check every condition before writing anything, as a DynamoDB transaction does, and
            # report the first that fails in the port's order: task, run, token, vote.
            token = self._tokens.get(consume.token_hash) if consume is not None else None
            vote_key = (run_id, consume.vote_on[0]) if consume is not None and consume.vote_on is not None else None
            request = self._tasks.get(vote_key) if vote_key is not None else None
            check_change(task_id, current, change, self._runs.get(run_id), run_id, exports, consume, token, request)
            if vote_key is not None and request is not None:
                self._tasks[vote_key] = replace(request, votes=request.votes + 1)
            if consume is not None and token is not None:
                self._tokens[consume.token_hash] = replace(token, used_by=consume.request_id)
            record = self._tasks[key] = changed(current, task_id, change)
            if exports:
                run = self._runs[run_id]
                self._runs[run_id] = replace(run, variables={**run.variables, **_copy(exports)})
            return _copy(record)

    def resolve_edge(self, run_id: str, task_id: str, dep_id: str, outcome: str,
                     epoch: int | None = None) -> Written[TaskRecord]:
        with self._lock:
            key = (run_id, task_id)
            record = self._tasks.get(key) or TaskRecord(task_id)
            counted = edge_resolved(record, dep_id, outcome, epoch)
            if counted is None:
                return Written(False, _copy(record))
            self._tasks[key] = counted
            return Written(True, _copy(counted))

    def record_refusal(self, run_id: str, record_id: str, refusal: dict[str, Any], keep: int) -> TaskRecord:
        with self._lock:
            current = self._tasks.get((run_id, record_id)) or TaskRecord(record_id)
            self._tasks[(run_id, record_id)] = record = refusal_record(current, refusal, keep)
            return _copy(record)

    # circuit breakers (circuits.py)
    def get_circuit(self, name: str) -> Circuit | None:
        return self._circuits.get_circuit(name)

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        return self._circuits.put_circuit(circuit)

    # tokens
    def put_token(self, token: TokenRecord) -> bool:
        with self._lock:
            if token.token_hash in self._tokens:
                return False  # already there, maybe used: never reset it
            self._tokens[token.token_hash] = token
            return True

    def get_token(self, token_hash: str) -> TokenRecord | None:
        return self._tokens.get(token_hash)

    def unused_tokens(self, kind: str) -> list[TokenRecord]:
        with self._lock:
            return [t for t in self._tokens.values() if t.kind == kind and not t.used_by]

    # redrive and rewind
    def reset_task(self, run_id: str, task_id: str, epoch: int, keep: dict[str, Any] | None = None,
                   rewinding: bool = False) -> bool:
        with self._lock:
            run = self._run(run_id)
            if not may_reset(run, self._tasks.get((run_id, task_id)), epoch, rewinding):
                return False
            # ``keep`` may say a status: a rewind into a loop's body writes a kept item again, stamped.
            fields = {"task_id": task_id, "status": "PENDING", **_copy(keep or {}), "redrive": epoch}
            self._tasks[(run_id, task_id)] = TaskRecord(**fields)
            return True

    def reopen_run(self, run_id: str, epoch: int, sinks_done: list[str], sinks_remaining: int,
                   now: str, note: LastChange | None = None, rewinding: bool = False) -> Written[RunRecord]:
        with self._lock:
            run = self._run(run_id)
            again = reopened(run, epoch, sinks_remaining, now, note, rewinding)
            if again is None:
                return Written(False, _copy(run))
            self._sinks_done[run_id] = set(sinks_done)
            self._runs[run_id] = again
            return Written(True, _copy(again))

    # migration (infra/engine/migration.py)
    def migrate_task(self, run_id: str, record: TaskRecord, epoch: int, plan_hash: str,
                     expect: TaskRecord | None) -> bool:
        with self._lock:
            run = self._run(run_id)
            if not may_migrate_task(run, self._tasks.get((run_id, record.task_id)), epoch, plan_hash, expect):
                return False
            self._tasks[(run_id, record.task_id)] = _copy(record)
            return True

    def pause_to_migrate(self, run_id: str, epoch: int, plan_hash: str,
                         note: LastChange | None = None) -> Written[RunRecord]:
        with self._lock:
            run = self._run(run_id)
            paused = paused_to_migrate(run, epoch, plan_hash, note)
            if paused is None:
                return Written(False, _copy(run))
            self._runs[run_id] = paused
            return Written(True, _copy(paused))

    def switch_plan(self, run_id: str, epoch: int, source: str, target: str, inputs: dict[str, Any],
                    variables: dict[str, Any], sinks_done: list[str], sinks_remaining: int,
                    note: LastChange | None = None) -> Written[RunRecord]:
        with self._lock:
            run = self._run(run_id)
            moved = switched(run, epoch, source, target, inputs, variables, sinks_remaining, note)
            if moved is None:
                return Written(False, _copy(run))
            self._sinks_done[run_id] = set(sinks_done)
            self._runs[run_id] = moved
            return Written(True, _copy(moved))

    def begin_rewind(self, run_id: str, epoch: int, task_id: str, comps: list[list[str]] | None = None,
                     note: LastChange | None = None, moving: bool = False) -> Written[RunRecord]:
        with self._lock:
            run = self._run(run_id)
            marked = rewind_begun(run, epoch, task_id, comps, note, moving)
            if marked is None:
                return Written(False, _copy(run))
            self._runs[run_id] = marked
            return Written(True, _copy(marked))

    def reopen_moving(self, run_id: str, epoch: int, gone: list[str], sinks: int, fenced: list[str],
                      now: str, note: LastChange | None = None) -> Written[RunRecord]:
        with self._lock:
            run = self._run(run_id)
            again = reopened_moving(run, self._sinks_done.get(run_id, set()), epoch, gone, sinks, fenced, now, note)
            if again is None:
                return Written(False, _copy(run))
            self._runs[run_id], self._sinks_done[run_id] = again
            return Written(True, _copy(again[0]))
