"""Crash points on the SQLite state file: `bench/crash_points.py --store sqlite`.

The process is local mode on a state directory, built as `loopline run --local` builds it
(loopline/memory/local_mode.py: the store, the work and result queues, the timers, the change feed
and the history on one file), with code tasks run inline so a run is one sequence of operations,
the same on every try. An operation is one transaction on the file: a write, a read (a message's
run and tasks, the change feed, a plan: what the engine decides from), or a pump pass's batch (the
message's claim, every write its handling makes and its ack, committed together, or committed in
parts where a claim or a wait must be on the file before what follows). Transactions are where a real
process's death shows: one is committed whole or not at all (loopline/sqlite/db.py), so dying
anywhere between two commits leaves the file as dying right after the first, and dying inside one
as dying before it. The crash comes before its BEGIN (nothing of it written) or after its COMMIT
returned (all of it durable, the caller never told).

Everything of the process counts, unlike on AWS where the pollers stand for SQS: here the process
claims and acks its own messages, turns the change feed into history and writes a code task's
result itself, and may die in any of those. After the crash the process is dead: every further
operation of it raises before touching the file (so a ``finally`` that would ack the message it was
handling cannot), its connections are closed, and a new LocalMode opens the same file, as a process
started again would. Each run has a file of its own (and a clock of its own, moved by hand).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.crash_points import Crash, Harness
from infra.clock import ManualClock
from loopline.memory.local_mode import LocalMode
from loopline.sqlite.db import Database


class CrashingDatabase(Database):
    """The state file as one process sees it, each operation reported to ``harness`` around it.
    An operation is a transaction (a write, a read, or a pump pass's batch of writes: one commit,
    loopline/sqlite/db.py) or a read outside any; a read inside a batch is part of the batch's."""

    def __init__(self, path: str | Path, harness: SQLiteHarness):
        self._harness = harness
        super().__init__(path)  # its schema's write comes before any run: not counted

    def _operation_begins(self) -> None:
        self._harness.operation_begins()

    def _operation_commits(self) -> None:
        if self._harness.dead:  # died inside the transaction: it is rolled back, nothing of it written
            raise Crash("the process is dead")

    def _operation_ended(self) -> None:
        self._harness.operation_ended()  # only once committed: a body that raised wrote nothing


class _Process:
    """One process on the state directory: local mode, pumped by the harness, gone whole when it dies."""

    def __init__(self, harness: SQLiteHarness, mode: LocalMode):
        self._harness = harness
        self.mode = mode
        self.lock = threading.RLock()  # drive() takes it as it takes the embedded runtime's

    def pump_once(self) -> int:
        # All of a pass is the process's own work: claiming, handling and acking a message, running
        # a code task and writing its result, turning the feed into history.
        self._harness.active = True
        try:
            return self.mode.pump_once()
        finally:
            self._harness.active = False

    def stop(self) -> None:
        self.mode.close()


class SQLiteHarness(Harness):
    idle_sleep = 0.0  # nothing here waits for real time: the queue's visibility runs on the manual clock

    unit = "operations"

    def __init__(self) -> None:
        super().__init__(ManualClock())
        self.dead = False
        self._root = Path(tempfile.mkdtemp(prefix="loopline-crash-sqlite-"))
        self._state: Path | None = None
        self._runs = 0

    def operation_begins(self) -> None:
        if self.dead:
            raise Crash("the process is dead")  # nothing more of it reaches the file
        self._crash_if_chosen(self.before)

    def operation_ended(self) -> None:
        self._crash_if_chosen(self.after)

    def _crash_if_chosen(self, point: Any) -> None:
        try:
            point()
        except Crash:
            self.dead = True
            raise

    def fresh(self) -> None:
        if self._state is not None:
            shutil.rmtree(self._state, ignore_errors=True)  # the last run's file: done with
        self._runs += 1
        self._state = self._root / f"run{self._runs}"
        self.clock = ManualClock()

    def runtime(self) -> _Process:
        assert self._state is not None, "fresh() first"
        self.dead = False  # a new process
        mode = LocalMode(clock=self.clock, inline_code=True, state=self._state,
                         database=lambda path: CrashingDatabase(path, self))
        return _Process(self, mode)

    def has_start_message(self, runtime: _Process) -> bool:
        return len(runtime.mode.queue) > 0  # visible or claimed: both are rows of the file

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)
