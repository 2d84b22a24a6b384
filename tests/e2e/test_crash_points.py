"""Issue #5 item 1, in CI: crash before and after every AWS call of a run, restart, and the run ends as a
clean one would (bench/crash_points.py; here the chain and the loop, the slower others in the bench).
Issue #12 item 1: the same on local mode's SQLite state file, a crash before and after every
transaction and a new process on the same file (`--store sqlite`, bench/crash_sqlite.py).

All the enumerations start together, each in a process of its own, when the first of these tests runs:
the suite is otherwise one process, so they use the machine's second core instead of adding their times
(the SQLite ones take about half a minute each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crash_points.py"
WORKFLOWS = ("chain", "loop")
STORES = ("aws", "sqlite")
CASES = [(store, workflow) for store in STORES for workflow in WORKFLOWS]
# On SQLite a message's handling is one transaction (loopline/sqlite/db.py): the chain has 20
# operations, 40 crash points, the loop 36.
MIN_TRIED = {"aws": 40, "sqlite": 30}


@pytest.fixture(scope="module")
def enumerations():
    started = {(store, name): subprocess.Popen(
        [sys.executable, str(SCRIPT), "--store", store, "--only", name, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for store, name in CASES}
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize(("store", "workflow"), CASES)
def test_every_crash_point_recovers(store, workflow, enumerations):
    out, err = enumerations[store, workflow].communicate(timeout=900)
    assert out.strip(), err[-2000:]  # it crashed before counting (a failed crash point exits 1, counted)
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["tried"] > MIN_TRIED[store]  # a harness that tried next to nothing would pass anything
    assert counts["passed"] == counts["tried"], counts["failures"][:3]
    assert counts["crashed"] == counts["tried"]  # every crash point was reached: each run did crash
