"""The CLI as an operator's tool (issue #11 item 5): --version, defaults in --help, "did you mean"
for a mistyped task type, live progress of `run` on a terminal (a pseudo-terminal here), and
`dev`'s line for each run's start and end. A subprocess each, as a user runs them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, whichever the script was installed from

TYPO = """\
workflow:
  metadata: {id: typo}
  tasks:
    - id: a
      type: pythn
      config: {code: "result = 1"}
"""

LOOP = (ROOT / "tests" / "unit" / "workflows" / "progress_demo.yaml").read_text()


def loopline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_version_is_the_projects():
    done = loopline("--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert done.returncode == 0 and done.stdout == f"loopline {version}\n", done


def test_help_shows_each_default_and_never_none():
    assert "(default: 8080)" in loopline("dev", "--help").stdout
    assert "(default: 5055)" in loopline("emulator", "--help").stdout
    for command in ("approvals", "approve", "cancel", "workflows", "migrate"):
        assert "(default: http://127.0.0.1:8080)" in loopline(command, "--help").stdout, command
    for command in ("validate", "compile", "graph", "run", "approvals", "approve", "reject", "cancel", "pause",
                    "resume", "redrive", "rewind", "workflows", "migrate", "dev", "emulator"):
        shown = loopline(command, "--help")
        assert shown.returncode == 0 and "default: None" not in shown.stdout and "default: False" not in shown.stdout


def test_a_mistyped_task_type_is_answered_with_the_closest_one(tmp_path):
    path = write(tmp_path, "typo.yaml", TYPO)
    expected = f"{path}:5:13: unknown task type 'pythn' (did you mean 'python'? expected one of: python, shell,"
    checked = loopline("validate", path)
    assert checked.returncode == 2 and checked.stdout.startswith(expected), checked
    ran = loopline("run", path)
    assert ran.returncode == 2 and ran.stderr.startswith(expected), ran


def _run_on_a_terminal(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """`loopline ARGS` with stderr on a pseudo-terminal (stdout a pipe): (exit, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    # A terminal 200 columns wide, so that the whole line fits; the width is the terminal's, not $COLUMNS.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    env = {k: v for k, v in ENV.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([LOOPLINE, *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed: the process is gone
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=30), out, seen.decode(errors="replace")


def test_run_on_a_terminal_shows_live_progress(tmp_path):
    path = write(tmp_path, "loop.yaml", LOOP)
    code, out, terminal = _run_on_a_terminal("run", path)
    assert code == 0 and ": COMPLETED" in out, (out, terminal)
    assert "\r\x1b[K" in terminal  # redrawn in place
    counts = [int(n) for n in re.findall(r"(\d)/4 tasks done", terminal)]
    assert counts and counts == sorted(counts) and counts[-1] == 4, terminal
    assert re.search(r"loop each: [0-2]/3 iterations", terminal), terminal
    assert "last waits for each" in terminal, terminal
    assert "nap waits for its timer" in terminal, terminal
    assert terminal.endswith("\r\x1b[K") or "tasks done" not in terminal.rsplit("\n", 1)[-1]  # cleared at the end


def test_run_json_on_a_terminal_and_run_off_a_terminal_show_no_progress_line(tmp_path):
    path = write(tmp_path, "loop.yaml", LOOP)
    code, out, terminal = _run_on_a_terminal("run", path, "--json")
    assert code == 0 and json.loads(out)["status"] == "COMPLETED" and out.count("\n") == 1
    assert "tasks done" not in terminal and "\x1b[K" not in terminal, terminal
    piped = loopline("run", path)
    assert piped.returncode == 0 and "tasks done" not in piped.stderr and "\x1b[K" not in piped.stderr


def test_dev_logs_each_runs_start_and_end():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([LOOPLINE, "dev", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        _wait(lambda: any("serving on" in line for line in lines), proc)
        body = json.dumps({"workflow": LOOP.replace("[1, 2, 3]", "[1]")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/runs", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            run_id = json.loads(reply.read())["run_id"]
        _wait(lambda: any(f"run {run_id} ended" in line for line in lines), proc)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        reader.join(timeout=5)
    mine = [line.rstrip("\n") for line in lines if line.startswith(f"run {run_id} ")]
    assert mine[0] == f"run {run_id} started: workflow=progress_demo status=RUNNING", lines
    assert re.fullmatch(rf"run {run_id} ended: workflow=progress_demo status=COMPLETED duration=\d+\.\d\ds", mine[1])
    assert len(mine) == 2, mine


def _wait(predicate, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail("the dev server did not get there")
        time.sleep(0.1)
