"""A reader that closes the pipe early (`loopline compile f.yaml | head -c 10`) is no error of ours:
every printing command stops quietly with exit 141 (128 + SIGPIPE), nothing on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def many_tasks(tmp_path: Path, count: int = 400) -> str:
    """A workflow whose plan (361 kB for 400 tasks) is far larger than a pipe's 64 kB buffer."""
    lines = ["workflow:", "  metadata: {id: big}", "  tasks:"]
    lines += [f'    - {{id: t{i}, type: python, config: {{code: "result = {i}"}}}}' for i in range(count)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def closed_early(*args: str, read: int) -> subprocess.CompletedProcess:
    """Run this checkout's CLI with stdout a real pipe whose reader takes ``read`` bytes, then closes it."""
    process = subprocess.Popen([sys.executable, "-m", "loopline.cli", *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    taken = process.stdout.read(read) if read else b""
    process.stdout.close()
    stderr = process.stderr.read().decode()
    return subprocess.CompletedProcess(args, process.wait(timeout=120), taken, stderr)


@pytest.mark.parametrize("command", ["compile", "graph"])
def test_a_large_output_read_in_part(tmp_path, command):
    # The graph of 400 tasks is about 18 kB: all of it fits in the pipe's buffer, and the CLI could end
    # before the reader closes. 2,000 tasks make it about 90 kB, more than the buffer holds.
    done = closed_early(command, many_tasks(tmp_path, 400 if command == "compile" else 2000), read=10)
    assert len(done.stdout) == 10
    assert (done.returncode, done.stderr) == (141, "")


def test_validate_into_a_pipe_closed_before_it_writes(tmp_path):
    done = closed_early("validate", many_tasks(tmp_path, 3), read=0)
    assert (done.returncode, done.stderr) == (141, "")


def test_run_json_into_a_pipe_closed_before_its_line(tmp_path):
    """The run ends (its progress on stderr), then its one line finds the pipe closed."""
    done = closed_early("run", many_tasks(tmp_path, 2), "--json", "--local", read=0)
    assert done.returncode == 141
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "t1: COMPLETED" in done.stderr


def test_an_open_pipe_still_gets_everything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "loopline.cli", "compile", many_tasks(tmp_path)], cwd=ROOT,
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout) > 300_000
