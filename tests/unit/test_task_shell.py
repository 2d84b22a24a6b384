"""The shell task type: argument lists, never a shell; timeouts; a bare environment; capped output."""

from __future__ import annotations

import os
import time

import pytest

from infra.tasks import shell_task
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401


def test_runs_an_argument_list_and_returns_exit_code_stdout_stderr(task_env):  # noqa: F811
    result = run_type("shell", {"command": ["sh", "-c", "echo out; echo err >&2"]})
    assert result == {"exit_code": 0, "stdout": "out", "stderr": "err"}


def test_data_is_one_literal_argument_never_shell_syntax(task_env):  # noqa: F811
    victim = task_env / "victim.txt"
    victim.write_text("still here")
    data = f"hello; rm -rf {victim} && echo pwned $(id) `id` | cat > {victim}"
    result = run_type("shell", {"command": ["echo", data]})
    assert result["stdout"] == data
    assert victim.read_text() == "still here"
    # inside an explicit sh -c script, data passed as "$1" stays data too
    result = run_type("shell", {"command": ["sh", "-c", 'printf "%s" "$1"', "sh", data]})
    assert result["stdout"] == data
    assert victim.read_text() == "still here"


def test_a_string_command_is_split_like_a_shell_would_but_not_interpreted(task_env):  # noqa: F811
    result = run_type("shell", {"command": "echo 'two words' ; ls"})
    assert result["stdout"] == "two words ; ls"


def test_non_zero_exit_is_a_shell_error_with_the_code_and_stderr_tail(task_env):  # noqa: F811
    error = failure("shell", {"command": ["sh", "-c", "echo first >&2; echo last words >&2; exit 3"]})
    assert error.error_type == "ShellError"
    assert error.message.startswith("exit code 3: ")
    assert error.message.endswith("last words")


def test_a_missing_program_is_a_shell_error(task_env):  # noqa: F811
    error = failure("shell", {"command": ["definitely-not-a-program-xyz"]})
    assert error.error_type == "ShellError"
    assert "127" in error.message and "definitely-not-a-program-xyz" in error.message


def test_timeout_kills_the_process_group(task_env):  # noqa: F811
    marker = task_env / "late"
    error = failure("shell", {"command": ["sh", "-c", f"sleep 1; touch {marker}"], "timeout": "300ms"})
    assert error.error_type == "TaskTimeout"
    time.sleep(1.2)  # past the moment the command would have touched the marker, had it survived
    assert not marker.exists()


def test_the_tasks_own_timeout_also_bounds_it(task_env):  # noqa: F811
    error = failure("shell", {"command": ["sleep", "5"]}, timeout=0.3)
    assert error.error_type == "TaskTimeout"


def test_environment_is_minimal_plus_the_configured_values(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "engine-secret")
    monkeypatch.setenv("LOOPLINE_RUNS_TABLE", "runs")
    result = run_type("shell", {"command": ["env"], "environment": {"GREETING": "hi", "COUNT": 3}})
    names = dict(line.split("=", 1) for line in result["stdout"].splitlines())
    assert names["GREETING"] == "hi" and names["COUNT"] == "3"
    assert "AWS_SECRET_ACCESS_KEY" not in names and "LOOPLINE_RUNS_TABLE" not in names
    # HOME and TMPDIR are the attempt's own private directory (docs/security.md), never the engine's
    assert set(names) <= {"PATH", "HOME", "TMPDIR", "GREETING", "COUNT", "PWD", "SHLVL", "_"}
    assert names["HOME"] == names["TMPDIR"] != os.environ.get("HOME")


def test_working_dir_defaults_to_the_file_root_and_is_relative_to_it(task_env):  # noqa: F811
    (task_env / "sub").mkdir()
    assert os.path.realpath(run_type("shell", {"command": ["pwd", "-P"]})["stdout"]) == os.path.realpath(task_env)
    result = run_type("shell", {"command": ["pwd", "-P"], "working_dir": "sub"})
    assert result["stdout"] == os.path.realpath(task_env / "sub")
    error = failure("shell", {"command": ["pwd"], "working_dir": "missing"})
    assert error.error_type == "InvalidConfig"


def test_capture_output_false_discards_output(task_env):  # noqa: F811
    result = run_type("shell", {"command": ["echo", "hi"], "capture_output": False})
    assert result == {"exit_code": 0, "stdout": "", "stderr": ""}


def test_output_is_capped(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setattr(shell_task, "MAX_OUTPUT_BYTES", 1000)
    result = run_type("shell", {"command": ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a"]})
    assert result["stdout"].startswith("a" * 1000)
    assert "[... 4000 bytes cut]" in result["stdout"]
    assert len(result["stdout"]) < 1100


@pytest.mark.parametrize("command", [None, [], "", ["sh", {"x": 1}], "unbalanced 'quote"])
def test_bad_commands_are_invalid_config(task_env, command):  # noqa: F811
    assert failure("shell", {"command": command}).error_type == "InvalidConfig"
