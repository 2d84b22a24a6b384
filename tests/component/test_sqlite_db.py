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
