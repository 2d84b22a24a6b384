"""A task item's labels for its metric points, read off the worker's hot path (docs/metrics.md).

A task item carries neither its run's workflow nor its task type: the history consumer finds
them from the run (``get_run``: workflow id and plan hash) and the run's plan (``get_plan``: the
node's type, or a block's kind), through the ``StateStore`` port, so the same code serves
HistoryFunction (DynamoDB) and local mode (memory, SQLite).

Both are cached for the process. A plan is content-addressed, so the plan under a hash never
changes. A run's workflow id is written when the run is created and never again; its plan hash
changes only when a migration moves the run onto another version. The history consumer reads every
change of the run's own item before its tasks' later ones (one stream, in order) and hands it to
``saw`` (statemachine/history.py: ``run_seen``): so a run whose start the consumer saw is never read
back, and after a migration its tasks are labelled from the new plan. A run only read is cached
when found: a run not there now (an expired one) is asked again next time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

from statemachine.history import RunSeen
from statemachine.plan import Plan

from .engine.keys import node_of
from .ports import StateStore, TaskLabels

K = TypeVar("K")
V = TypeVar("V")

RUNS_KEPT = 1024  # a batch of stream records is mostly a few runs' tasks: this covers many batches
PLANS_KEPT = 256  # a deployment runs few distinct plans; a parsed plan is a few KB to a few hundred


class _Lru(Generic[K, V]):
    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class StoreTaskContext:
    """The ``TaskContext`` port over a ``StateStore``: at most one ``get_run`` per run and one
    ``get_plan`` per plan for the life of the process (while they stay in the caches)."""

    def __init__(self, store: StateStore, runs_kept: int = RUNS_KEPT, plans_kept: int = PLANS_KEPT):
        self._store = store
        self._runs: _Lru[str, tuple[str, str]] = _Lru(runs_kept)  # run id -> (workflow id, plan hash)
        self._plans: _Lru[str, Plan] = _Lru(plans_kept)
        self._lock = threading.Lock()  # local mode may record from more than one thread

    def of(self, run_id: str, task_key: str) -> TaskLabels:
        # Store errors (StoreError from DynamoStore, sqlite3 errors locally) are not caught: the stream
        # record then fails and is retried, as when appending its history entry fails; a point with
        # labels missing for a passing outage would be a series that never comes back right.
        run = self._run(run_id)
        if run is None:
            return TaskLabels()  # no such run (expired): the point keeps the dimensions it has
        workflow, plan_hash = run
        plan = self._plan(plan_hash)
        node = plan.nodes.get(node_of(task_key)) if plan is not None else None
        if node is None:  # no plan stored, or an item that is no node (a loop's iteration)
            return TaskLabels(workflow=workflow)
        return TaskLabels(workflow=workflow, task_type=(node.type or "") if node.kind == "task" else node.kind)

    def retention(self, run_id: str) -> float | None:
        # The same cached reads as the labels: a run whose task points were labelled costs nothing more.
        run = self._run(run_id)
        plan = self._plan(run[1]) if run is not None else None
        return plan.retention if plan is not None else None

    def saw(self, run: RunSeen) -> None:
        with self._lock:
            self._runs.put(run.run_id, (run.workflow_id, run.plan_hash))

    def _run(self, run_id: str) -> tuple[str, str] | None:
        def read(key: str) -> tuple[str, str] | None:
            record = self._store.get_run(key)
            return (record.workflow_id, record.plan_hash) if record is not None else None
        return self._cached(self._runs, run_id, read)

    def _plan(self, plan_hash: str) -> Plan | None:
        def read(key: str) -> Plan | None:
            text = self._store.get_plan(key)
            if text is None:
                return None
            try:
                return Plan.from_json(text)
            except ValueError:  # pydantic's ValidationError: a plan this code cannot read; a retry would not help
                return None
        return self._cached(self._plans, plan_hash, read)

    def _cached(self, cache: _Lru[str, V], key: str, read: Callable[[str], V | None]) -> V | None:
        """The cached value, or ``read``'s (kept when found). The read is made outside the lock: two
        threads missing at once both read, and store the same value."""
        with self._lock:
            found = cache.get(key)
        if found is None:
            found = read(key)
            if found is not None:
                with self._lock:
                    cache.put(key, found)
        return found
