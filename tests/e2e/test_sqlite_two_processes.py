"""Two `loopline dev --local` processes on one state directory (issue #12 item 1): both pump the same
queues and write the same file, and every run still ends once, each of its effects once.

docs/local-state.md argues it (every conditional write is one ``BEGIN IMMEDIATE`` transaction, a
claimed message is invisible to the other process until it is deleted or its lease ends); this
test holds it: runs started on either server, interleaved, are finished by whichever process
claims their messages, and a step's file append is never made twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_dev_restart import free_port, wait_until
from tests.e2e.test_dev_server import get_json, request
from tests.e2e.test_sqlite_durability import Server

RUNS = 12
STEPS = 4
# Each step appends "RUN-STEP" to one file shared by every run and both processes, then waits 0.2 s
# (a durable timer, a delayed message either process may claim) before the next.
WORKFLOW = "workflow:\n  metadata: {id: shared_chain}\n  tasks:\n" + "\n".join(
    f"    - {{id: step{i}, type: file{f', depends_on: [pause{i - 1}]' if i else ''}, config: {{action: write, "
    f"path: effects.txt, append: true, content: \"${{inputs.n}}-{i}\\n\"}}}}\n"
    f"    - {{id: pause{i}, type: wait, depends_on: [step{i}], config: {{duration: 200ms}}}}"
    for i in range(STEPS)) + "\n"


def test_two_processes_on_one_directory_finish_every_run_with_each_effect_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Server(tmp_path, state, free_port())
    second = Server(tmp_path, state, free_port())
    try:
        runs = []
        for n in range(RUNS):  # alternately on each: each process starts half and may finish any
            base = (first, second)[n % 2].base
            status, _, text = request("POST", f"{base}/runs", {"workflow": WORKFLOW, "input": {"n": n}})
            assert status == 201, text
            runs.append(json.loads(text)["run_id"])

        def ended() -> list[dict] | None:
            views = [get_json(f"{(first, second)[k % 2].base}/runs/{run_id}")[1] for k, run_id in enumerate(runs)]
            return views if all(v["status"] in ("COMPLETED", "FAILED") for v in views) else None

        views = wait_until(ended, timeout=120)
        # Either server sees every run: one state, whichever process wrote it.
        assert {get_json(f"{first.base}/runs/{r}")[1]["status"] for r in runs} == {"COMPLETED"}
    finally:
        first.stop()
        second.stop()
    assert [v["status"] for v in views] == ["COMPLETED"] * RUNS, [v.get("error") for v in views]
    assert all(v["tasks"][f"step{i}"]["attempts"] == 1 for v in views for i in range(STEPS))
    lines = (tmp_path / "files" / "effects.txt").read_text().splitlines()
    assert sorted(lines) == sorted(f"{n}-{i}" for n in range(RUNS) for i in range(STEPS))  # each once
    for n in range(RUNS):  # and each run's in its order
        assert [line for line in lines if line.startswith(f"{n}-")] == [f"{n}-{i}" for i in range(STEPS)]
    logs = [p.read_text() for p in sorted(tmp_path.glob("dev-*.log"))]
    assert not any("Traceback" in log or "database is locked" in log for log in logs)
    # Each run's end is logged once, by the process that ended it; both took part (12 runs, 48 timers).
    ends = [log.count(" ended: workflow=shared_chain") for log in logs]
    assert sum(ends) == RUNS and min(ends) >= 1, ends
