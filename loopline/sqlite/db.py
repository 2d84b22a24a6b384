"""One SQLite database file shared by the store, the listing, the queues and the history.

WAL journal mode: readers never wait for the writer and the writer never waits for readers, so
the HTTP threads read while the pump writes. ``synchronous=NORMAL``: in WAL mode a commit is
durable against a killed process (kill -9: the WAL is in the OS's page cache and is replayed on
the next open), and a power loss or OS crash may lose the last few commits but never corrupts
the file (the WAL is checkpointed only after it is synced). FULL would sync on every commit, a
disk flush per transition, for the power-loss case only.

Every thread has its own connection (a sqlite3 connection is not meant to be shared between
threads, and local mode writes from the pump, the HTTP server's threads and the code runners).
Every conditional write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken before
the condition is read, so two threads, or two processes on the same file, never both see the
same state and both write. A busy timeout makes the other writers wait for it rather than fail.
Within one process the writers take turns on a lock instead (a waiter on the file's lock polls).

A commit is what costs (about 100 us for a small write here, against 15 us for the same write inside
a transaction: bench/README.md), so the pump handles a message in one ``batch``: each write inside
is a savepoint of the batch's one transaction, committed when the message is handled. Dying inside
the batch leaves the file as dying before its first write, which the engine already survives (every
write is conditional and repeatable; the message comes back). What must be on the file before
something outside it happens is committed at once with ``flush`` (loopline/sqlite/store.py says
which writes: a claim before its task runs, a token before its link is sent).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.ports import StoreError

BUSY_TIMEOUT_SECONDS = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (hash TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflows (
    workflow_id TEXT NOT NULL, version TEXT NOT NULL, version_key TEXT NOT NULL, hash TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (workflow_id, version)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflows_by_key ON workflows (workflow_id, version_key);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, status TEXT NOT NULL, workflow_id TEXT NOT NULL, created_at TEXT NOT NULL,
    sinks_done TEXT NOT NULL DEFAULT '[]', record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_id, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, run_id);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, used_by TEXT, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_by_kind ON tokens (kind, used_by);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL, sort_key TEXT NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (run_id, sort_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    sort_key TEXT PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID;
-- the change feed: each write of a run or task item, its old and new image (JSON), in commit order
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, old TEXT, new TEXT NOT NULL);
-- visible_at, due: microseconds since the epoch (exact order, no parsing)
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL,
    visible_at INTEGER NOT NULL, receives INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at, id);
CREATE TABLE IF NOT EXISTS timers (name TEXT PRIMARY KEY, due INTEGER NOT NULL) WITHOUT ROWID;
-- circuit breakers (loopline/sqlite/circuits.py): one row per name, written over the version read
CREATE TABLE IF NOT EXISTS circuits (
    name TEXT PRIMARY KEY, record TEXT NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
"""

# Columns a later release added to a table an earlier one created: CREATE TABLE IF NOT EXISTS leaves a
# state file's existing table as it was, so they are added to it when the file is opened.
ADDED_COLUMNS = (("workflows", "extra", "TEXT NOT NULL DEFAULT '{}'"),)  # a version's changelog, deprecation


class Database:
    """The file at ``path`` (created with its tables if absent)."""

    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT_SECONDS):
        if str(path) == ":memory:" or str(path).startswith("file:"):
            # Each thread's connection would open a database of its own.
            raise ValueError("a SQLite state needs a file path")
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._opened: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()
        # held by the thread whose write transaction is open (a batch's, from its first write to its commit)
        self._turn = threading.RLock()
        with self.write() as db:
            for table, column, declaration in ADDED_COLUMNS:
                if db.execute(f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'").fetchone() \
                        and column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and closed when the thread ends: local
        mode starts a thread per code task, each of which writes its result)."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            try:
                # isolation_level=None: no implicit transactions; each method says where its own begins.
                db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            held = self._local.held = _Held(db)
            with self._lock:
                self._opened.add(held)
        return held.db

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row of one read, outside any transaction (a statement sees one snapshot), or inside
        this thread's open batch (seeing its writes)."""
        alone = self._open_batch() is None
        if alone:
            self._operation_begins()
        try:
            found = self.connection().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        if alone:
            self._operation_ended()
        return found

    def row(self, sql: str, args: Sequence[Any] = ()) -> Any | None:
        """The first row of one read, or None."""
        found = self.rows(sql, args)
        return found[0] if found else None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its first read: committed if the body
        returns, rolled back (nothing written) if it raises. In this thread's batch, a savepoint of
        the batch's transaction: the body's writes are kept with the batch's, or undone alone."""
        batch = self._batch_of_thread()
        if batch is None:
            with self._turn, self._transaction("BEGIN IMMEDIATE") as db:
                yield db
            return
        db = self._begin_batch(batch)
        try:
            db.execute("SAVEPOINT write")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            yield db
        except BaseException as failed:
            try:
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            if isinstance(failed, sqlite3.Error):
                raise StoreError(f"{self.path}: {failed}") from failed
            raise
        try:
            db.execute("RELEASE write")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: its statements see one snapshot of the file (in this thread's open
        batch, the batch's transaction)."""
        if self._open_batch() is not None:
            yield self.connection()
            return
        with self._transaction("BEGIN") as db:
            yield db

    @contextmanager
    def batch(self) -> Iterator[None]:
        """This thread's writes until the end join one transaction, begun at the first of them and
        committed at the end, whether the body returns or raises (what it wrote stands, as it would
        had each write been committed alone). Nested batches are the outer one."""
        if self._batch_of_thread() is not None:
            yield
            return
        batch = self._local.batch = _Batch()
        try:
            yield
        finally:
            self._local.batch = None
            self._end_batch(batch)

    def flush(self) -> None:
        """Commit this thread's batch so far (nothing if no write of it is pending): what comes next
        may act outside the file on what it wrote. The batch's next write begins a new transaction."""
        batch = self._batch_of_thread()
        if batch is not None:
            self._end_batch(batch)

    def after_commit(self, action: Callable[[], None]) -> None:
        """``action`` once this thread's writes so far are committed: now, or at its batch's commit."""
        batch = self._open_batch()
        if batch is None:
            action()
        else:
            batch.after.append(action)

    def _batch_of_thread(self) -> _Batch | None:
        return getattr(self._local, "batch", None)

    def _open_batch(self) -> _Batch | None:
        batch = self._batch_of_thread()
        return batch if batch is not None and batch.open else None

    def _begin_batch(self, batch: _Batch) -> sqlite3.Connection:
        db = self.connection()
        if not batch.open:
            self._turn.acquire()
            try:
                self._begin(db, "BEGIN IMMEDIATE")
            except BaseException:
                self._turn.release()
                raise
            batch.open = True
        return db

    def _end_batch(self, batch: _Batch) -> None:
        if not batch.open:
            return
        batch.open = False
        after, batch.after = batch.after, []
        try:
            self._commit(self.connection())
        finally:
            self._turn.release()
        for action in after:
            action()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self.connection()
        self._begin(db, begin)
        try:
            yield db
        except sqlite3.Error as exc:
            db.rollback()
            raise StoreError(f"{self.path}: {exc}") from exc
        except BaseException:
            db.rollback()  # a refused condition (or any error) writes nothing
            raise
        self._commit(db)

    def _begin(self, db: sqlite3.Connection, begin: str) -> None:
        self._operation_begins()
        try:
            db.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _commit(self, db: sqlite3.Connection) -> None:
        try:
            self._operation_commits()
            db.execute("COMMIT")
        except BaseException as exc:
            db.rollback()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: commit failed: {exc}") from exc
            raise
        self._operation_ended()

    # An operation is one transaction on the file, or one read outside any: bench/crash_sqlite.py
    # kills the process around them. Nothing here.
    def _operation_begins(self) -> None:
        """Before a transaction's BEGIN, or a read outside any."""

    def _operation_commits(self) -> None:
        """Before a transaction's COMMIT (raising rolls it back)."""

    def _operation_ended(self) -> None:
        """After a transaction's COMMIT returned, or a read outside any."""

    def close(self) -> None:
        """Close every thread's connection (the file stays; the next Database opens it again)."""
        with self._lock:
            opened, self._opened = list(self._opened), weakref.WeakSet()
        for held in opened:
            held.db.close()
        self._local = threading.local()


class _Batch:
    """A thread's batch: whether its transaction is open, and what waits for its commit."""

    def __init__(self) -> None:
        self.open = False
        self.after: list[Callable[[], None]] = []


class _Held:
    """A thread's connection, held only by the thread's local data: when the thread ends, that
    data goes, and with it the connection (closing one twice is harmless)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __del__(self) -> None:
        self.db.close()
