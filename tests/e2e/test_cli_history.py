"""`loopline history RUN` and `loopline logs RUN --follow` against a running `loopline dev`, as an
operator uses them: real processes, HTTP only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_dev_server import dev_server, get_json, request, wait_for

ROOT = Path(__file__).resolve().parents[2]
# This checkout's code (the installed `loopline` script may point at another): -c puts the cwd first.
LOOPLINE = [sys.executable, "-c", "import sys; from loopline.cli import main; sys.exit(main())"]

HOLD = """
workflow:
  metadata: {id: held}
  tasks:
    - {id: say, type: python, config: {code: "print('hello from say'); result = 1"}}
    - {id: hook, type: callback, depends_on: [say], config: {timeout: 1h}}
    - {id: after, type: python, depends_on: [hook], config: {code: "print('after the hook'); result = 2"}}
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*LOOPLINE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server():
    yield from dev_server(LOOPLINE, cwd=ROOT)


def test_logs_follow_a_run_to_its_end_and_history_prints_it(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": HOLD})
    assert status == 201, text
    run_id = json.loads(text)["run_id"]
    follower = subprocess.Popen([*LOOPLINE, "logs", run_id, "--follow", "--url", server], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    time.sleep(1)
    assert follower.poll() is None  # still following: the run waits for its callback
    assert request("POST", view["callbacks"][0]["url"], {"ok": True})[0] == 200
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert "say| hello from say" in out and "after| after the hook" in out
    assert "task hook" in out and "RUNNING -> COMPLETED" in out
    assert out.strip().splitlines()[-1].split()[1:4] == ["run", "RUNNING", "->"]  # it stopped at the run's end

    shown = cli("history", run_id, "--json", "--url", server)
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)["entries"]
    assert [(e["item"], e["status"]) for e in entries if e["kind"] == "task"] == [
        ("say", "RUNNING"), ("say", "COMPLETED"), ("hook", "RUNNING"), ("hook", "WAITING"), ("hook", "COMPLETED"),
        ("after", "RUNNING"), ("after", "COMPLETED")]
    text_lines = cli("history", run_id, "--url", server).stdout.splitlines()
    assert len(text_lines) == len(entries) and "[request start held]" in text_lines[0]


def test_a_cancel_reason_from_the_cli_reaches_the_audit_log(server):
    _, _, text = request("POST", f"{server}/runs", {"workflow": HOLD})
    run_id = json.loads(text)["run_id"]
    done = cli("cancel", run_id, "--reason", "started by mistake", "--url", server)
    assert done.returncode == 0, done.stderr
    status, log = get_json(f"{server}/audit?action=cancel")
    assert status == 200 and [(a["target"], a["reason"]) for a in log["entries"]] == [(run_id,
                                                                                      "started by mistake")]


def test_an_unknown_run_is_one_line_and_exit_2(server):
    for command in ("history", "logs"):
        shown = cli(command, "no-such-run", "--url", server)
        assert shown.returncode == 2 and shown.stderr.strip() == "loopline: no run with id 'no-such-run'"
