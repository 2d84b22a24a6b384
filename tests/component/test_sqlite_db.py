"""loopline/sqlite/db.py: the file's connections, one per thread, none left open by a thread that ended."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading

import pytest

from infra.ports import StoreError
from loopline.sqlite.db import Database


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts this process's open files on Linux")
def test_a_thread_that_ended_leaves_no_connection_open(tmp_path) -> None:
    db = Database(tmp_path / "state.db")
    db.connection()  # this thread's, and the WAL's files, open from here on
    before = open_files()

    def write(n: int) -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO plans (hash, body) VALUES (?, ?)", (f"h{n}", "{}"))

    for n in range(40):  # as code tasks' threads, one after another
        thread = threading.Thread(target=write, args=(n,))
        thread.start()
        thread.join()
    gc.collect()
    assert open_files() <= before + 2
    assert db.connection().execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 40
    db.close()


def test_a_refused_body_writes_nothing_and_a_storage_error_is_a_store_error(tmp_path) -> None:
    db = Database(tmp_path / "state.db")
    with pytest.raises(KeyError):
        with db.write() as conn:
            conn.execute("INSERT INTO plans (hash, body) VALUES ('a', '{}')")
            raise KeyError("refused")  # a condition failed after a write: rolled back
    with pytest.raises(StoreError) as failed:
        with db.write() as conn:
            conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert isinstance(failed.value.__cause__, sqlite3.Error)
    assert db.connection().execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 0
    db.close()


def test_a_writer_waits_for_another_process_lock_rather_than_fail(tmp_path) -> None:
    first, second = Database(tmp_path / "state.db"), Database(tmp_path / "state.db", busy_timeout=5)
    done = threading.Event()
    with first.write() as conn:
        conn.execute("INSERT INTO plans (hash, body) VALUES ('a', '{}')")

        def other() -> None:
            with second.write() as theirs:  # waits for the first's lock, then writes
                theirs.execute("INSERT INTO plans (hash, body) VALUES ('b', '{}')")
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not done.wait(0.3)  # held off while the first transaction is open
    thread.join(timeout=10)
    assert done.is_set()
    assert first.connection().execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 2
    first.close()
    second.close()


def test_a_read_that_fails_is_a_store_error_and_a_file_that_is_no_database_is_refused(tmp_path) -> None:
    db = Database(tmp_path / "state.db")
    with pytest.raises(StoreError) as failed:
        db.rows("SELECT * FROM no_such_table")
    assert isinstance(failed.value.__cause__, sqlite3.Error)
    db.close()
    (tmp_path / "other.db").write_bytes(b"not a database, " * 100)
    with pytest.raises(StoreError) as refused:
        Database(tmp_path / "other.db")
    assert isinstance(refused.value.__cause__, sqlite3.DatabaseError)


def test_a_state_file_from_before_versions_gains_their_column(tmp_path) -> None:
    """The registry's `extra` column (docs/versions.md) is added to a file an earlier release wrote,
    whose versions read as registered at an unknown time, and can be deprecated."""
    from loopline.sqlite.store import SQLiteStore
    from statemachine.versions import WorkflowVersion

    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE workflows (workflow_id TEXT NOT NULL, version TEXT NOT NULL, version_key TEXT NOT NULL, "
                "hash TEXT NOT NULL, PRIMARY KEY (workflow_id, version)) WITHOUT ROWID")
    old.execute("INSERT INTO workflows VALUES ('wf', '1.0.0', '000001.000000.000000~', 'h1')")
    old.commit()
    old.close()
    db = Database(path)
    store = SQLiteStore(db)
    assert store.list_workflows() == [WorkflowVersion("wf", "1.0.0", "h1")]
    assert store.register_workflow(WorkflowVersion("wf", "1.0.0", "h2")).applied is False
    assert store.register_workflow(WorkflowVersion("wf", "1.1.0", "h2", changelog="new")).applied
    assert store.deprecate_workflow("wf", "1.0.0", "2030-01-01T00:00:00.000Z", "old").deprecated
    db.close()
    assert [v.version for v in SQLiteStore(Database(path)).workflow_versions("wf")] == ["1.1.0", "1.0.0"]
