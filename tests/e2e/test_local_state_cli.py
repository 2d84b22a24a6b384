"""`--local` keeps its state in a directory (docs/local-state.md): .loopline/ under the current one by
default, `--state DIR` elsewhere, `--state :memory:` nowhere; `--state` without `--local` is refused.
Run with this checkout's code, in a directory of the test's own."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOW = """
workflow:
  metadata: {id: kept}
  tasks:
    - {id: pause, type: wait, config: {duration: 0s}}
"""


def loopline(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LOOPLINE_HOME"}
    return subprocess.run([sys.executable, "-m", "loopline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT)})


def runs_in(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(state / "state.db") as db:
        return db.execute("SELECT run_id, status FROM runs").fetchall()


def test_local_runs_are_kept_in_dot_loopline_by_default_and_across_commands(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    first = loopline(tmp_path, "run", "flow.yaml", "--local", "--json")
    second = loopline(tmp_path, "run", "flow.yaml", "--local", "--json")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    ids = {json.loads(done.stdout)["run_id"] for done in (first, second)}
    assert sorted(runs_in(tmp_path / ".loopline")) == sorted((run_id, "COMPLETED") for run_id in ids)


def test_state_elsewhere_or_in_memory(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    done = loopline(tmp_path, "run", "flow.yaml", "--local", "--state", "kept-here", "--json")
    assert done.returncode == 0, done.stderr
    assert runs_in(tmp_path / "kept-here") == [(json.loads(done.stdout)["run_id"], "COMPLETED")]
    done = loopline(tmp_path, "run", "flow.yaml", "--local", "--state", ":memory:", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "COMPLETED", done.stderr
    assert not (tmp_path / ".loopline" / "state.db").exists() and len(runs_in(tmp_path / "kept-here")) == 1


def test_state_goes_with_local_only(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    refused = loopline(tmp_path, "run", "flow.yaml", "--state", "somewhere")
    assert (refused.returncode, refused.stderr.strip()) == (2, "loopline: --state goes with --local")
    refused = loopline(tmp_path, "dev", "--local", "--aws-endpoint", "http://127.0.0.1:1")
    assert (refused.returncode, refused.stderr.strip()) == (2, "loopline: --local and --aws-endpoint: choose one")
    assert not (tmp_path / "somewhere").exists()
