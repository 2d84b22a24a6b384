"""A power loss on local mode's state file, emulated: `loopline dev --local --state DIR` is killed with SIGKILL
mid-run, then its write-ahead log is cut back to an earlier commit, with a torn frame after it, and the
shared-memory index is deleted, as a machine that lost power would leave them (docs/local-state.md, "What
survives what"). Started again on the same DIR, the run carries on from that earlier state and ends.

Why this is the power-loss case: with ``synchronous=NORMAL`` SQLite syncs the log when it checkpoints it, not
at each commit, so a power loss can take away the commits since the last sync, and the last frame being
written may be half on the disk. The log is append-only and each frame carries the salts of its log's
generation and a running checksum: the frames that reached the disk are a prefix of what was written. So
what a power loss can leave is the log cut at any point, the cut frame torn, the index (a memory map, never
synced) gone. The test cuts at a commit that loses a completed step, so the loss is real, and then checks
that the run resumes from there: the lost steps run again, once each, in order.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
from contextlib import closing
from pathlib import Path

from tests.e2e.test_dev_restart import free_port
from tests.e2e.test_sqlite_durability import STEPS, chain_killed_mid_run, restarted_until_ended

WAL_HEADER = 32
FRAME_HEADER = 24


def commit_ends(wal: bytes) -> list[int]:
    """The byte offsets in the log ``wal`` just after each of its commit frames, oldest first: the points a
    power loss may cut it back to. Only the log's current generation counts (frames with its header's salts:
    after a checkpoint the log is written again from its start, and older frames past the new ones are dead)."""
    assert wal[:4] in (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83"), "not a SQLite write-ahead log"
    page_size, = struct.unpack(">I", wal[8:12])
    salts = wal[16:24]
    size = FRAME_HEADER + page_size
    ends = []
    for start in range(WAL_HEADER, len(wal) - size + 1, size):
        header = wal[start:start + FRAME_HEADER]
        if header[8:16] != salts:
            break
        if struct.unpack(">I", header[4:8])[0]:  # the database's size in pages: set on a commit's last frame only
            ends.append(start + size)
    return ends


def completed_steps(state: Path, wal_length: int, scratch: Path) -> int:
    """How many steps the state file records COMPLETED once its log is cut at ``wal_length``, read from a
    copy (opening the file recovers it: the test must not do so to the real one before it is cut)."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    shutil.copy(state / "state.db", scratch / "state.db")
    (scratch / "state.db-wal").write_bytes((state / "state.db-wal").read_bytes()[:wal_length])
    with closing(sqlite3.connect(scratch / "state.db")) as db:
        records = [row[0] for row in db.execute("SELECT record FROM tasks WHERE task_id LIKE 'step%'")]
    return sum(json.loads(record)["status"] == "COMPLETED" for record in records)


def lose_power(state: Path, scratch: Path) -> tuple[int, int]:
    """Cut the log of the (killed) server's state file back to its latest commit that loses at least one
    completed step, tear a frame after it and drop the index. Returns the completed steps before and after."""
    wal = (state / "state.db-wal").read_bytes()
    ends = commit_ends(wal)
    at_kill = completed_steps(state, len(wal), scratch)
    for end in reversed(ends):
        kept = completed_steps(state, end, scratch)
        if kept < at_kill:
            break
    else:
        raise AssertionError("no commit in the log loses a completed step: the checkpoint took them all")
    page_size, = struct.unpack(">I", wal[8:12])
    torn = wal[end:end + (FRAME_HEADER + page_size) // 2] or os.urandom(FRAME_HEADER + page_size // 2)
    (state / "state.db-wal").write_bytes(wal[:end] + torn)  # half of the next frame reached the disk
    (state / "state.db-shm").unlink(missing_ok=True)
    return at_kill, kept


def test_a_run_resumes_from_the_commits_a_power_loss_left(tmp_path: Path) -> None:
    state, effects = tmp_path / "state", tmp_path / "files" / "effects.txt"
    port = free_port()
    run_id, before = chain_killed_mid_run(tmp_path, port, 3)

    at_kill, kept = lose_power(state, tmp_path / "scratch")
    assert kept < at_kill <= len(before)

    # The restart takes about 30 s: the message the killed server had received is kept invisible for the
    # queue's visibility timeout (loopline/sqlite/queue.py), as after any kill.
    done = restarted_until_ended(tmp_path, port, run_id)
    assert done["status"] == "COMPLETED", done
    assert all(done["tasks"][f"step{i}"]["status"] == "COMPLETED" for i in range(STEPS))
    lines = effects.read_text().splitlines()
    assert lines[:len(before)] == before  # what the steps did outside the file is not undone by the loss
    # The file lost the ends of steps `kept` and later: the run goes on from step `kept`, each step once, in order.
    assert lines[len(before):] == [f"step{i}" for i in range(kept, STEPS)], lines
