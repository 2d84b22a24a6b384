"""Local mode: the same engine and handlers on local adapters: no AWS, no emulator.

The adapters are in memory, or with ``state`` (a directory) on one SQLite file in it
(loopline/sqlite/, docs/local-state.md): runs, their tasks, links, the registry and every queued
or delayed message then survive the process, and a new LocalMode on the same directory carries on
the runs an earlier one left.
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable

from infra import wiring
from infra.clock import SystemClock
from infra.engine import Busy, Engine, EngineSettings
from infra.engine.journal import EverySink, KeptTransitions, LoggedTransitions
from infra.gauges import in_progress_points
from infra.history import HistoryRecorder
from infra.links import LinkSigner
from infra.listing import RunQueries
from infra.ports import Clock, History, StateStore, Timers
from infra.task_context import StoreTaskContext
from infra.tasks.registry import TaskTypes
from loopline.doorbell import Doorbell
from loopline.sqlite.db import Database
from loopline.sqlite.feed import SQLiteFeed
from loopline.sqlite.history import SQLiteHistory
from loopline.sqlite.listing import SQLiteRunQueries
from loopline.sqlite.queue import SQLiteQueue, SQLiteTimers
from loopline.sqlite.store import SQLiteStore

from .feed import ChangeFeed, Feed
from .history import InMemoryHistory
from .listing import InMemoryRunQueries
from .prometheus import PrometheusRegistry
from .queue import InMemoryQueue, InMemoryTimers, LocalQueue
from .store import InMemoryStore
from .task_dispatch import InMemoryDispatch

STATE_FILE = "state.db"  # in the state directory


class LocalMode:
    """``inline_code``: code tasks run at once in the thread that dispatches them (deterministic tests);
    otherwise on runner threads, as the task-runner function runs beside the worker on AWS.
    ``task_types``: the built-in ones with the environment's settings unless given.
    An idle ``run_until`` sleeps on ``doorbell`` (loopline/doorbell.py): a send to either queue, or
    the next message's due time, wakes it."""

    def __init__(self, clock: Clock | None = None, public_url: str = "http://127.0.0.1:8080",
                 lease_seconds: float = 60.0, inline_code: bool = False, task_types: TaskTypes | None = None,
                 state: Path | None = None, database: Callable[[Path], Database] = Database):
        """``database``: opens the state file (bench/crash_sqlite.py wraps it to kill the process at
        an operation of its choosing)."""
        self.clock = clock or SystemClock()
        # Each write of a run or task item goes to the feed; pump_once turns it into history with the
        # consumer HistoryFunction runs on AWS (infra/history.py), off the writer's thread.
        # What HistoryFunction (and GaugesFunction) emit as EMF on AWS (docs/metrics.md); the gauges are read
        # from the store at each scrape.
        self.metrics = PrometheusRegistry(read_gauges=lambda: self.metrics.emit(in_progress_points(queries)))
        self.doorbell = Doorbell()
        self.db: Database | None = None
        queries: RunQueries
        if state is None:
            memory_feed = ChangeFeed()
            self.feed: Feed = memory_feed
            self.history: History = InMemoryHistory()
            self.store: StateStore = InMemoryStore(memory_feed)
            queries = InMemoryRunQueries(self.store)
            memory = InMemoryQueue(self.clock, on_send=self.doorbell.ring)
            self.queue: LocalQueue = memory
            # the task runner's destination
            self.results: LocalQueue = InMemoryQueue(self.clock, on_send=self.doorbell.ring)
            self.timers: Timers = InMemoryTimers(memory)
        else:
            state.mkdir(parents=True, exist_ok=True)
            self.db = db = database(state / STATE_FILE)
            durable_feed = SQLiteFeed(db)  # a change is in it once it is in the store, and stays until recorded
            self.feed = durable_feed
            self.history = SQLiteHistory(db)
            self.store = SQLiteStore(db, durable_feed)
            queries = SQLiteRunQueries(db)
            work = SQLiteQueue(db, "work", self.clock, on_send=self.doorbell.ring)
            self.queue = work
            self.results = SQLiteQueue(db, "results", self.clock, on_send=self.doorbell.ring)
            self.timers = SQLiteTimers(db, work, self.clock)
        self.recorder = HistoryRecorder(self.history, self.metrics, StoreTaskContext(self.store))
        # The task types' settings are read from the environment now, as a deployed worker reads them at start;
        # code tasks run with the same ones, as the task-runner function has the worker's.
        types = task_types if task_types is not None else TaskTypes.from_env(os.environ)
        self.dispatch = InMemoryDispatch(self.results, self.clock, inline=inline_code,
                                         sandbox=types.settings.sandbox)
        settings = EngineSettings(public_url=public_url, lease_seconds=lease_seconds, env=wiring.exposed_env(),
                                  custom_modules=wiring.deployment_limits().custom_modules,
                                  sandbox=types.settings.sandbox)
        from loopline.embedded.keyfile import local_link_key

        self.transitions = KeptTransitions()  # each applied transition, in order (a run's history so far)
        links = LinkSigner(local_link_key(state).encode())  # with a state directory, the key is kept in it
        self.engine = Engine(self.store, self.queue, self.timers, links, self.clock, settings,
                             dispatch=self.dispatch, task_types=types,
                             transitions=EverySink(self.transitions, LoggedTransitions()),
                             queries=queries)
        wiring.use_engine(self.engine)  # the api handler (for approval links) drives this engine
        wiring.use_history(self.history)

    def record_history(self, limit: int = 100) -> int:
        """Turn up to ``limit`` change records of the feed into history; returns how many were handled.
        A record the consumer fails on stays in the feed with those after it, as a stream's shard is
        retried from its first failed record."""
        records = self.feed.peek(limit)
        recorded = 0
        try:
            for record in records:
                self.recorder.record(record["dynamodb"])
                recorded += 1
        finally:
            self.feed.done(records[:recorded])
        return len(records)

    def pump_once(self) -> int:
        """Handle one result or message (and turn the writes so far into history); 0 when idle.
        On a state file each of the two is one transaction (loopline/sqlite/db.py: ``batch``)."""
        with self._batch():
            recorded = self.record_history()
        with self._batch():
            return self._handle_one() or min(recorded, 1)

    def _batch(self) -> AbstractContextManager[None]:
        return self.db.batch() if self.db is not None else nullcontext()

    def _handle_one(self) -> int:
        # A message is acked once handled, so one this process dies on comes back after its visibility
        # timeout (with a state directory, to the next process). One whose handler raises is acked
        # too: local mode has no dead-letter queue, and the error goes to the caller as it always has.
        result = self.results.claim()
        if result is not None:
            try:
                self.engine.accept_result(result.body)
            finally:
                self.results.ack(result)
            return 1
        delivery = self.queue.claim()
        if delivery is None:
            return 0
        try:
            message = self.queue.read(delivery.body)
            try:
                self.engine.handle(message)
            except Busy:
                self.queue.send(message, delay_seconds=1)
        finally:
            self.queue.ack(delivery)
        return 1

    def run_until(self, done: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Pump until ``done()`` or ``timeout`` seconds of real time; asleep while there is nothing to do
        (``done()`` is asked after each pass and each wake, see ``LocalRuntime.run_until``)."""
        deadline = time.monotonic() + timeout
        while True:
            self.doorbell.arm()
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return done()
            if self.pump_once() == 0:
                self.sleep(left)

    def sleep(self, longest: float) -> None:
        """After a pass that found nothing: until a send, the next message's due time, or ``longest``."""
        due = self.queue.next_due()
        if due is not None:
            self.doorbell.ring_in((due - self.clock.now()).total_seconds(), slot="next message")
        self.doorbell.sleep(min(longest, self.doorbell.idle_limit))

    def close(self) -> None:
        self.dispatch.close()
        if self.db is not None:
            self.db.close()
