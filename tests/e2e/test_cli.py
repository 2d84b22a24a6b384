"""`loopline validate` and `loopline run` as a user runs them: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
ROOT = Path(__file__).resolve().parents[2]


def loopline(*args, timeout=120):
    # The console script with this checkout's code first on the path (the venv's install may be another's).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


GOOD = """
workflow:
  metadata: {id: sums}
  inputs:
    schema:
      type: object
      properties:
        numbers: {type: array, items: {type: number}}
        label: {type: string, default: total}
      required: [numbers]
  tasks:
    - id: add
      type: python
      config: {code: "result = sum(inputs['numbers'])"}
    - id: pause
      type: wait
      depends_on: [add]
      config: {duration: 1s}
    - id: show
      type: python
      depends_on: [pause]
      config: {code: "result = inputs['label'] + '=' + str(tasks['add']['output'])"}
  outputs:
    mappings:
      total: "${tasks.add.output}"
      text: "${tasks.show.output}"
"""


def test_validate_ok_and_every_error_as_file_line_col(tmp_path):
    good = write(tmp_path, "good.yaml", GOOD)
    ok = loopline("validate", good)
    assert ok.returncode == 0, ok.stderr
    bad = write(tmp_path, "bad.yaml", """
        workflow:
          metadata: {id: broken}
          tasks:
            - id: a
              type: htp
            - id: b
              type: python
              depends_on: [nope]
              config: {code: "x = 1"}
            - id: c
              type: python
              when: "${tasks.b.output +}"
              config: {code: "x = 1"}
        """)
    result = loopline("validate", bad)
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) >= 3
    assert all(line.startswith(f"{bad}:") for line in lines), lines
    assert any(":6:" in line and "htp" in line for line in lines), lines
    assert any("nope" in line for line in lines), lines
    assert "Traceback" not in result.stderr


def test_validate_yaml_syntax_error_and_cycle(tmp_path):
    broken = write(tmp_path, "syntax.yaml", "workflow:\n  metadata: {id: x\n  tasks: []\n")
    result = loopline("validate", broken)
    assert result.returncode == 2 and f"{broken}:" in result.stdout + result.stderr
    cyclic = write(tmp_path, "cycle.yaml", """
        workflow:
          metadata: {id: cyc}
          tasks:
            - {id: a, type: python, depends_on: [b], config: {code: "x=1"}}
            - {id: b, type: python, depends_on: [a], config: {code: "x=1"}}
        """)
    result = loopline("validate", cyclic)
    assert result.returncode == 2
    assert "a -> b -> a" in result.stdout + result.stderr or "b -> a -> b" in result.stdout + result.stderr


@pytest.mark.parametrize("mode", [[], ["--local"]])
def test_run_json_prints_one_object_and_exits_0(tmp_path, mode):
    path = write(tmp_path, "good.yaml", GOOD)
    result = loopline("run", path, "--input", '{"numbers": [1, 2, 3.5]}', "--json", *mode)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    body = json.loads(lines[0])
    assert set(body) == {"run_id", "status", "outputs", "error", "tasks"}
    assert body["status"] == "COMPLETED" and body["error"] is None
    assert body["outputs"] == {"total": 6.5, "text": "total=6.5"}
    assert body["tasks"]["pause"] == {"status": "COMPLETED", "output": body["tasks"]["pause"]["output"],
                                      "attempts": 1, "error": None}
    # The contract: logs and progress go to stderr with --json too (README, docs/language.md).
    progress = result.stderr.splitlines()
    assert f"run {body['run_id']} started" in progress[0]
    assert {"  add: COMPLETED", "  pause: COMPLETED", "  show: COMPLETED"} <= set(progress)


def test_run_input_from_file_and_failed_run_exits_1(tmp_path):
    path = write(tmp_path, "fails.yaml", """
        workflow:
          metadata: {id: fails}
          tasks:
            - {id: a, type: python, config: {code: "raise ZeroDivisionError('no')"}}
        """)
    inputs = tmp_path / "in.json"
    inputs.write_text("{}")
    result = loopline("run", path, "--input", f"@{inputs}", "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "ZeroDivisionError"
    assert body["tasks"]["a"]["error"] == {"type": "ZeroDivisionError", "message": "no"}


def test_run_bad_input_exits_2_with_the_schema_message(tmp_path):
    path = write(tmp_path, "good.yaml", GOOD)
    result = loopline("run", path, "--input", '{"numbers": "seven"}', "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "numbers" in result.stderr and "array" in result.stderr
    assert "Traceback" not in result.stderr
    missing = loopline("run", path, "--json")
    assert missing.returncode == 2 and "numbers" in missing.stderr
    not_json = loopline("run", path, "--input", "{oops", "--json")
    assert not_json.returncode == 2 and "invalid JSON" in not_json.stderr


def test_run_invalid_workflow_exits_2(tmp_path):
    path = write(tmp_path, "bad.yaml", "workflow:\n  metadata: {id: x}\n  tasks:\n    - {id: a, type: nope}\n")
    result = loopline("run", path, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}:4:" in result.stderr


def test_missing_file_exits_2_without_traceback(tmp_path):
    result = loopline("run", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_run_with_a_registered_sub_workflow(tmp_path):
    child = write(tmp_path, "child.yaml", """
        workflow:
          metadata: {id: child_wf}
          tasks:
            - {id: hello, type: python, config: {code: "result = 'hi ' + inputs['who']"}}
          outputs: {mappings: {greeting: "${tasks.hello.output}"}}
        """)
    parent = write(tmp_path, "parent.yaml", """
        workflow:
          metadata: {id: parent_wf}
          sub_workflows:
            - {id: kid, workflow_ref: child_wf, inputs: {who: loopline}}
        """)
    missing = loopline("run", parent, "--json")
    assert missing.returncode == 2 and "child_wf" in missing.stderr and missing.stdout == ""
    done = loopline("run", parent, "--register", child, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"]["kid"]["output"] == {"greeting": "hi loopline"}


@pytest.mark.parametrize("mode", [[], ["--local"]])
def test_run_json_shows_what_a_task_printed(tmp_path, mode):
    """Issue #9 item 10: what a code task printed is kept with its attempt and shown as ``printed``."""
    path = write(tmp_path, "prints.yaml", """
        workflow:
          metadata: {id: prints}
          tasks:
            - {id: talk, type: python, config: {code: "print('working on it'); result = 42"}}
        """)
    result = loopline("run", path, "--json", *mode)
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)["tasks"]["talk"]
    assert task == {"status": "COMPLETED", "output": 42, "attempts": 1, "error": None, "printed": "working on it\n"}
