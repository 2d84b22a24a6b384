"""Local mode on a state directory survives kill -9: `loopline dev --local --state DIR` is killed with
SIGKILL mid-run and started again on the same DIR, and the runs carry on (docs/local-state.md); so is
`loopline run --local` while a code task runs, and another `run --local` on the same DIR carries it on.

The server and the runs run this checkout's code (``python -m loopline.cli`` with the repository on the path),
in a directory of its own, so nothing is kept anywhere else."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from tests.e2e.test_dev_restart import WORKFLOW as APPROVAL  # first, ask (an approval), after
from tests.e2e.test_dev_restart import free_port, wait_until
from tests.e2e.test_dev_server import get_json, request

ROOT = Path(__file__).resolve().parents[2]

STEPS = 6


def chain() -> str:
    """Each step appends its line to one file, then waits a second (a durable timer) before the next."""
    tasks = []
    for i in range(STEPS):
        after = f", depends_on: [pause{i - 1}]" if i else ""
        tasks.append(f"    - {{id: step{i}, type: file{after}, config: {{action: write, path: effects.txt, "
                     f"append: true, content: \"step{i}\\n\"}}}}")
        tasks.append(f"    - {{id: pause{i}, type: wait, depends_on: [step{i}], config: {{duration: 1s}}}}")
    return "workflow:\n  metadata: {id: durable_chain}\n  tasks:\n" + "\n".join(tasks) + "\n"


class Server:
    """`loopline dev --local --state DIR` in a process group of its own (killed whole, as by kill -9)."""

    def __init__(self, home: Path, state: Path, port: int, *options: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LOOPLINE_FILE_ROOT": str(home / "files"),
               # A task run in the worker that the kill interrupts is taken over after its lease.
               "LOOPLINE_LEASE_SECONDS": "3"}
        self.log = (home / f"dev-{port}.log").open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "loopline.cli", "dev", "--local", "--state", str(state),
                                      "--port", str(port), *options], cwd=home, env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.log, start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get_json(f"{self.base}/runs/nothing")[0] == 404)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # no shutdown of any kind
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.log.close()


def start_run(base: str, workflow: str) -> str:
    status, _, text = request("POST", f"{base}/runs", {"workflow": workflow, "input": {}})
    assert status == 201, text
    return json.loads(text)["run_id"]


def test_a_waiting_run_outlives_kill_9_and_finishes_when_approved(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path, tmp_path / "state", port)
    try:
        run_id = start_run(server.base, APPROVAL)
        wait_until(lambda: get_json(f"{server.base}/runs/{run_id}")[1]["approvals"])
    finally:
        server.kill()

    server = Server(tmp_path, tmp_path / "state", port)  # a new process: nothing of the first in memory
    try:
        status, view = get_json(f"{server.base}/runs/{run_id}")
        assert status == 200
        assert view["tasks"]["first"] == {"status": "COMPLETED", "output": 1, "attempts": 1, "error": None}
        assert view["tasks"]["ask"]["status"] == "WAITING"
        listed = get_json(f"{server.base}/runs?status=RUNNING")[1]
        assert [r["run_id"] for r in listed["runs"]] == [run_id]
        link = view["approvals"][0]["url"]  # made by the first process: its key is kept in the state directory
        status, _, text = request("POST", link, {"decision": "APPROVED"})
        assert status == 200, text
        assert request("POST", link, {"decision": "APPROVED"})[0] == 410  # used: the use was kept too
        done = wait_until(lambda: (v := get_json(f"{server.base}/runs/{run_id}")[1])["status"] == "COMPLETED" and v)
        assert done["tasks"]["after"]["output"] == 2 and done["tasks"]["first"]["attempts"] == 1
        # The history holds both processes' changes: it is kept in the state directory too.
        entries = get_json(f"{server.base}/runs/{run_id}/history?limit=500")[1]["entries"]
        changes = [(e["item"], e["status"]) for e in entries]
        assert ("first", "COMPLETED") in changes and ("ask", "WAITING") in changes  # before the kill
        assert ("after", "COMPLETED") in changes and changes[-1] == ("", "COMPLETED")  # after it
    finally:
        server.stop()
    log = (tmp_path / f"dev-{port}.log").read_text()  # both processes' stderr
    assert f"run {run_id} started: workflow=restart status=RUNNING" in log
    assert f"run {run_id} ended: workflow=restart status=COMPLETED" in log


def chain_killed_mid_run(home: Path, port: int, steps_done: int) -> tuple[str, list[str]]:
    """The chain started on `loopline dev --local --state HOME/state`, the server killed once ``steps_done``
    steps have written their lines: the run's id and the lines written by then."""
    effects = home / "files" / "effects.txt"
    server = Server(home, home / "state", port)
    try:
        run_id = start_run(server.base, chain())
        wait_until(lambda: effects.exists() and len(effects.read_text().splitlines()) >= steps_done, timeout=30)
    finally:
        server.kill()
    before = effects.read_text().splitlines()
    assert len(before) < STEPS, "the chain ended before the kill: nothing was tested"
    return run_id, before


def restarted_until_ended(home: Path, port: int, run_id: str) -> dict:
    """`loopline dev --local` started again on HOME/state: the run's view once it has ended (90 s at most)."""
    server = Server(home, home / "state", port)
    try:
        return wait_until(lambda: (v := get_json(f"{server.base}/runs/{run_id}")[1])["status"] in
                          ("COMPLETED", "FAILED") and v, timeout=90)
    finally:
        server.stop()


def test_a_chain_killed_mid_run_carries_on_with_each_effect_once(tmp_path: Path) -> None:
    effects = tmp_path / "files" / "effects.txt"
    port = free_port()
    run_id, before = chain_killed_mid_run(tmp_path, port, 2)

    done = restarted_until_ended(tmp_path, port, run_id)
    assert done["status"] == "COMPLETED", done
    lines = effects.read_text().splitlines()
    assert lines[:len(before)] == before
    # A file task is at least once (docs/durability.md, "Known limits"): only the step the kill
    # interrupted between its write and its record may have written twice, right after itself.
    collapsed = [line for n, line in enumerate(lines) if n == 0 or line != lines[n - 1]]
    assert collapsed == [f"step{i}" for i in range(STEPS)], lines
    assert len(lines) - len(collapsed) <= 1, lines
    assert all(done["tasks"][f"step{i}"]["status"] == "COMPLETED" for i in range(STEPS))


# A code task killed while it runs (issue #12 item 1): its attempt is RUNNING with a lease of its timeout plus
# the 90 s margin (infra/engine/code_tasks.py), and its watchdog, a delayed message in the state file, takes
# it over when the lease ends. The run's input is 2 MB: local mode keeps values inline in the file (no
# claim check), and the value must come back whole after the kill.
NAPPING = """
workflow:
  metadata: {id: napping}
  tasks:
    - {id: nap, type: python, timeout: 5, config: {code: "import time; time.sleep(3); result = len(inputs['blob'])"}}
    - id: after
      type: python
      depends_on: [nap]
      config: {code: "result = [tasks['nap']['output'], inputs['blob'][-3:]]"}
"""
# What the second `loopline run --local` waits on while it pumps the earlier run: a decision nobody makes.
WAITING = """
workflow:
  metadata: {id: waiting}
  tasks:
    - {id: ask, type: approval, config: {title: "never", approvers: [a@example.com]}}
"""
BLOB = "x" * (2 * 1024 * 1024 - 3) + "end"


def run_local(home: Path, *args: str) -> subprocess.Popen:
    """`loopline run ... --local --state state` in a process group of its own, its stderr in a log."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (home / "run.log").open("a")
    return subprocess.Popen([sys.executable, "-m", "loopline.cli", "run", *args, "--local", "--state", "state"],
                            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def stored(state: Path, sql: str, args: tuple = ()) -> list:
    """Rows of the state file, read beside the process writing it (WAL: the reader does not block it)."""
    if not (state / "state.db").exists():
        return []
    with closing(sqlite3.connect(state / "state.db", timeout=10)) as db:
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []  # the file exists, its schema is not written yet: nothing stored so far
            raise


def task(state: Path, task_id: str) -> dict | None:
    rows = stored(state, "SELECT record FROM tasks WHERE task_id = ?", (task_id,))
    return json.loads(rows[0][0]) if rows else None


def test_a_code_task_killed_while_it_runs_is_taken_over_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (tmp_path / "napping.yaml").write_text(NAPPING)
    (tmp_path / "waiting.yaml").write_text(WAITING)
    (tmp_path / "input.json").write_text(json.dumps({"blob": BLOB}))
    first = run_local(tmp_path, "napping.yaml", "--input", "@input.json")
    try:
        wait_until(lambda: (task(state, "nap") or {}).get("status") == "RUNNING", timeout=30)
        time.sleep(1)  # the code is asleep in its runner now
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    (run_id, status, record), = stored(state, "SELECT run_id, status, record FROM runs")
    assert status == "RUNNING" and task(state, "nap")["status"] == "RUNNING"
    assert len(record) > len(BLOB)  # the input is in the run's row itself, no claim check

    # Another `loopline run --local` on the same state directory pumps the earlier run while it waits for
    # its own: the watchdog comes due about 51 s after the claim (the code's 5 s, local mode's 45 s
    # margin), takes the attempt over, and the run ends.
    second = run_local(tmp_path, "waiting.yaml", "--timeout", "300")
    try:
        wait_until(lambda: stored(state, "SELECT status FROM runs WHERE run_id = ?", (run_id,))[0][0]
                   in ("COMPLETED", "FAILED"), timeout=240)
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(timeout=10)
    (status, record), = stored(state, "SELECT status, record FROM runs WHERE run_id = ?", (run_id,))
    assert status == "COMPLETED", record[-2000:]
    assert json.loads(record)["inputs"] == {"blob": BLOB}  # 2 MB, whole after the kill and the restart
    nap, after = task(state, "nap"), task(state, "after")
    assert nap["status"] == after["status"] == "COMPLETED"
    assert nap["output"] == len(BLOB) and after["output"] == [len(BLOB), "end"]
    assert nap["attempt"] == 1  # taken over, not failed: the kill costs no attempt of the retry policy


# `--movable-clock` with a state directory (loopline/kept_clock.py): a wait of an hour, the clock moved
# half of it, the server killed and started again. Were the clock back at the wall clock, another half
# hour would leave the wait far from due; kept, it makes it due.
HOUR_WAIT = """
workflow:
  metadata: {id: hour_wait}
  tasks:
    - {id: hour, type: wait, config: {duration: 1h}}
"""


def test_a_moved_clock_outlives_kill_9_on_its_state_directory(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path, tmp_path / "state", port, "--movable-clock")
    try:
        run_id = start_run(server.base, HOUR_WAIT)
        wait_until(lambda: get_json(f"{server.base}/runs/{run_id}")[1]["tasks"]["hour"]["status"] == "WAITING")
        status, _, text = request("POST", f"{server.base}/_dev/clock", {"seconds": 1800})
        assert status == 200, text
        moved = json.loads(text)["now"]
    finally:
        server.kill()

    server = Server(tmp_path, tmp_path / "state", port, "--movable-clock")
    try:
        status, _, text = request("POST", f"{server.base}/_dev/clock", {"seconds": 0})
        assert json.loads(text)["now"] == moved  # where the killed server left it
        assert request("POST", f"{server.base}/_dev/clock", {"seconds": 1801})[0] == 200
        done = wait_until(lambda: (v := get_json(f"{server.base}/runs/{run_id}")[1])["status"] == "COMPLETED" and v,
                          timeout=30)
        assert done["tasks"]["hour"]["status"] == "COMPLETED"
    finally:
        server.stop()
