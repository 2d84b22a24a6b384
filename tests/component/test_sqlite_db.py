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


def on_file(path, sql: str, args: tuple = ()) -> list:
    """What another connection finds on the file: only what was committed."""
    other = sqlite3.connect(path)
    try:
        return other.execute(sql, args).fetchall()
    finally:
        other.close()


def committed_plans(path) -> set[str]:
    return {row[0] for row in on_file(path, "SELECT hash FROM plans")}


def put(db: Database, name: str) -> None:
    with db.write() as conn:
        conn.execute("INSERT INTO plans (hash, body) VALUES (?, '{}')", (name,))


def test_a_batch_commits_its_writes_together_at_its_end_and_keeps_them_when_its_body_raises(tmp_path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    woken: list[set[str]] = []
    with db.batch():
        put(db, "a")
        db.after_commit(lambda: woken.append(committed_plans(path)))
        put(db, "b")
        assert db.rows("SELECT COUNT(*) FROM plans")[0][0] == 2  # this thread reads its batch's writes
        assert committed_plans(path) == set() and woken == []  # nothing on the file yet, nobody told
    assert committed_plans(path) == {"a", "b"} and woken == [{"a", "b"}]  # told once it is on the file
    with pytest.raises(KeyError):
        with db.batch():
            put(db, "c")
            raise KeyError("the handler failed after a write")
    assert committed_plans(path) == {"a", "b", "c"}  # as had each write been committed alone
    db.close()


def test_a_refused_write_in_a_batch_is_undone_alone(tmp_path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    with db.batch():
        put(db, "a")
        with pytest.raises(KeyError):
            with db.write() as conn:
                conn.execute("INSERT INTO plans (hash, body) VALUES ('refused', '{}')")
                raise KeyError("a condition failed after a write")
        with pytest.raises(StoreError):
            put(db, "a")  # the same key again: a storage error, undone alone too
        put(db, "b")
    assert committed_plans(path) == {"a", "b"}
    db.close()


def test_flush_commits_a_batch_so_far_and_its_next_write_begins_again(tmp_path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    with db.batch():
        put(db, "a")
        db.flush()
        assert committed_plans(path) == {"a"}
        db.flush()  # nothing pending: nothing to do
        put(db, "b")
        assert committed_plans(path) == {"a"}
    assert committed_plans(path) == {"a", "b"}
    db.close()


def test_another_thread_writes_once_the_batch_has_committed(tmp_path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    done = threading.Event()
    with db.batch():
        put(db, "a")
        thread = threading.Thread(target=lambda: (put(db, "theirs"), done.set()))
        thread.start()
        assert not done.wait(0.3)  # takes its turn after the batch
        put(db, "b")
    thread.join(timeout=10)
    assert done.is_set() and committed_plans(path) == {"a", "b", "theirs"}
    db.close()


def test_in_a_batch_a_claim_or_a_wait_is_on_the_file_at_once_and_other_writes_at_its_end(tmp_path) -> None:
    """What follows an attempt's claim (its code, its request) or a wait (its links) acts outside
    the file: the store commits those at once (loopline/sqlite/store.py), the rest with the batch."""
    from infra.ports import RunRecord, TaskChange
    from loopline.sqlite.store import SQLiteStore

    path = tmp_path / "state.db"
    db = Database(path)
    store = SQLiteStore(db)
    store.create_run(RunRecord(run_id="r", workflow_id="wf", plan_hash="h", status="RUNNING",
                               created_at="2030-01-01T00:00:00.000Z"))

    def written(task_id: str) -> bool:
        return bool(on_file(path, "SELECT 1 FROM tasks WHERE task_id = ?", (task_id,)))

    with db.batch():
        store.change_task("r", "each.0", TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                                    set={"attempt": 1}))  # an iteration: no lease
        assert not written("each.0")
        store.change_task("r", "a", TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                               set={"attempt": 1, "lease_until": "2030-01-01T00:01:00.000Z"}))
        assert written("a") and written("each.0")  # the claim, with what came before it
        store.change_task("r", "b", TaskChange(status="COMPLETED", from_status=(None, "PENDING"), set={"attempt": 1}))
        assert not written("b")
        store.change_task("r", "w", TaskChange(status="WAITING", from_status=(None, "PENDING"), set={"attempt": 1}))
        assert written("w") and written("b")
    db.close()
