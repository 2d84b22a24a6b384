"""What `loopline` refuses or accepts at its edge (issue #9): sizes, options, deployment limits.
As a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import threading

import pytest

from tests.e2e.test_cli import LOOPLINE, write


def loopline(*args, env: dict | None = None, timeout: float = 120, **options) -> subprocess.CompletedProcess:
    """The command with this machine's environment, minus the deployment setting unless ``env`` gives it."""
    base = {k: v for k, v in os.environ.items() if k != "LOOPLINE_CUSTOM_MODULES"}
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, **options)

DESCRIPTION = "d" * 420_000  # the plan is over DynamoDB's 400 KB item


def test_plans_over_a_dynamodb_item_run_with_a_sub_workflow(tmp_path):
    child = write(tmp_path, "child.yaml", f"""
        workflow:
          metadata: {{id: big_child, description: {DESCRIPTION}}}
          tasks:
            - {{id: hello, type: wait, config: {{duration: 0s}}}}
          outputs: {{mappings: {{done: "${{tasks.hello.status}}"}}}}
        """)
    parent = write(tmp_path, "parent.yaml", f"""
        workflow:
          metadata: {{id: big_parent, description: {DESCRIPTION}}}
          sub_workflows:
            - {{id: kid, workflow_ref: big_child}}
          outputs: {{mappings: {{child: "${{tasks.kid.output.done}}"}}}}
        """)
    done = loopline("run", parent, "--register", child, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"child": "COMPLETED"}


CUSTOM = """
    workflow:
      metadata: {id: custom_cli}
      tasks:
        - id: c
          type: custom
          config: {handler: "json:dumps", parameters: {obj: [1, 2]}}
    """


def test_validate_run_and_compile_refuse_a_custom_module_the_deployment_does_not_allow(tmp_path):
    path = write(tmp_path, "custom.yaml", CUSTOM)
    refused = (f"{path}:7:25: task 'c': custom handler module 'json' is not allowed by this deployment (allowed: "
               "none; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)")
    checked = loopline("validate", path)
    assert checked.returncode == 2 and checked.stdout.splitlines() == [refused]
    for command in (["run", path, "--json"], ["run", path, "--local"], ["compile", path], ["graph", path]):
        result = loopline(*command)
        assert result.returncode == 2 and result.stdout == "" and result.stderr.splitlines() == [refused], command


def test_the_deployment_setting_allows_a_module_on_every_target(tmp_path):
    path = write(tmp_path, "custom.yaml", CUSTOM)
    env = {"LOOPLINE_CUSTOM_MODULES": "json"}
    assert loopline("validate", path, env=env).returncode == 0
    for mode in ([], ["--local"]):
        done = loopline("run", path, "--json", *mode, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tasks"]["c"]["output"] == "[1, 2]"


def test_a_timeout_over_what_the_target_runs_is_refused_by_validate(tmp_path):
    path = write(tmp_path, "slow.yaml", """
        workflow:
          metadata: {id: slow}
          tasks:
            - {id: fetch, type: http, config: {url: "https://example.com", timeout: 30s}}
        """)
    result = loopline("validate", path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{path}:5:77: task 'fetch': config.timeout 30s is over the 25 s that http tasks may run (they run inside "
        "the worker, whose Lambda timeout is 30 s)"]


# --- what the CLI reads: bounded while reading (item 15) --------------------------------------

SMALL = """
    workflow:
      metadata: {id: small}
      inputs:
        schema: {type: object, properties: {n: {type: number}}}
      tasks:
        - {id: w, type: wait, config: {duration: 0s}}
    """
GIB = 1024 ** 3


def _capped(limit: int = GIB):
    """A child that may not map more than ``limit`` bytes: reading a file whole would fail."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _endless_fifo(tmp_path, line: bytes) -> str:
    """A FIFO whose writer never stops (until the reader closes it)."""
    path = tmp_path / "endless"
    os.mkfifo(path)

    def write() -> None:
        try:
            with open(path, "wb") as pipe:
                while True:
                    pipe.write(line * 4096)
        except (BrokenPipeError, OSError):
            pass

    threading.Thread(target=write, daemon=True).start()
    return str(path)


def _workflow_commands(path: str, good: str) -> list[list[str]]:
    return [["validate", path], ["run", path, "--json"], ["compile", path], ["graph", path],
            ["workflows", "register", path, "--url", "http://127.0.0.1:9"], ["run", good, "--register", path]]


def test_a_huge_workflow_file_is_refused_while_reading(tmp_path):
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(2 * GIB)  # sparse: 2 GiB of NUL to read, none on disk
    good = write(tmp_path, "small.yaml", SMALL)
    for command in _workflow_commands(str(huge), good):
        result = loopline(*command, preexec_fn=_capped())
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip() == (f"loopline: {huge}:1:1: the workflow is larger than 1,000,000 characters; "
                                         "refused"), command


def test_devices_directories_and_missing_files_are_refused_with_a_reason(tmp_path):
    good = write(tmp_path, "small.yaml", SMALL)
    reasons = {"/dev/zero": "not a regular file or a pipe (a device or a socket)", str(tmp_path): "it is a directory",
               str(tmp_path / "absent.yaml"): "No such file or directory"}
    for path, reason in reasons.items():
        for command in _workflow_commands(path, good):
            result = loopline(*command, preexec_fn=_capped())
            assert result.returncode == 2 and result.stderr.strip() == f"loopline: {path}: cannot read: {reason}", (
                command, result.stderr)
        result = loopline("run", good, "--input", f"@{path}", preexec_fn=_capped())
        assert result.returncode == 2 and result.stderr.strip() == f"loopline: {path}: cannot read: {reason}"


def test_a_pipe_that_never_ends_is_refused_at_the_limit(tmp_path):
    result = loopline("validate", _endless_fifo(tmp_path, b"a: b\n"), preexec_fn=_capped())
    assert result.returncode == 2
    assert result.stderr.strip().endswith("the workflow is larger than 1,000,000 characters; refused")
    good = write(tmp_path, "small.yaml", SMALL)
    (tmp_path / "endless").unlink()
    result = loopline("run", good, "--input", "@" + _endless_fifo(tmp_path, b'{"n": 1} '), preexec_fn=_capped())
    assert result.returncode == 2
    assert result.stderr.strip().endswith("the input is larger than 5,242,880 bytes; refused")


def test_an_input_file_over_the_limit_is_refused_and_a_pipe_is_read(tmp_path):
    good = write(tmp_path, "small.yaml", SMALL)
    big = tmp_path / "big.json"
    big.write_text('{"n": 1, "pad": "' + "x" * (5 * 1024 * 1024) + '"}')
    result = loopline("run", good, "--input", f"@{big}")
    assert result.returncode == 2 and "the input is larger than 5,242,880 bytes; refused" in result.stderr
    done = subprocess.run(["bash", "-c", f'{LOOPLINE} run {good} --json --local --input @<(echo \'{{"n": 2}}\')'],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "COMPLETED"


# --- numbers JSON cannot hold in --input (item 12) --------------------------------------------

@pytest.mark.parametrize("text, reason", [
    ('{"n": NaN}', "NaN is not valid JSON (JSON has no NaN or Infinity)"),
    ('{"n": Infinity}', "Infinity is not valid JSON (JSON has no NaN or Infinity)"),
    ('{"n": [-Infinity]}', "-Infinity is not valid JSON (JSON has no NaN or Infinity)"),
    ('{"n": 1e999}', "number 1e999 is too large (JSON numbers must be finite)"),
])
def test_nan_and_infinity_in_the_input_are_refused(tmp_path, text, reason):
    good = write(tmp_path, "small.yaml", SMALL)
    inline = loopline("run", good, "--input", text, "--json")
    assert inline.returncode == 2 and inline.stdout == ""
    assert inline.stderr.strip() == f"loopline: --input: invalid JSON: {reason}"
    path = tmp_path / "in.json"
    path.write_text(text)
    from_file = loopline("run", good, "--input", f"@{path}", "--json")
    assert from_file.returncode == 2 and from_file.stderr.strip() == f"loopline: {path}: invalid JSON: {reason}"


# --- options (item 15) -----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "soon", "1e999"])
def test_run_timeout_must_be_a_finite_number_above_zero(tmp_path, value):
    good = write(tmp_path, "small.yaml", SMALL)
    result = loopline("run", good, f"--timeout={value}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument --timeout: must be a number of seconds above 0, not '{value}'" in result.stderr


@pytest.mark.parametrize("command, value, lowest", [
    ("dev", "70000", 0), ("dev", "-1", 0), ("dev", "http", 0), ("emulator", "0", 1), ("emulator", "65536", 1)])
def test_ports_must_be_in_range(command, value, lowest):
    result = loopline(command, f"--port={value}", timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument --port: must be a port number from {lowest} to 65535, not '{value}'" in result.stderr


def test_dev_on_port_0_serves_on_a_free_port():
    server = subprocess.Popen([LOOPLINE, "dev", "--port", "0"], stderr=subprocess.PIPE, text=True,
                              env={k: v for k, v in os.environ.items() if k != "LOOPLINE_CUSTOM_MODULES"})
    try:
        line = server.stderr.readline()
        assert re.search(r"serving on http://127\.0\.0\.1:(\d+) ", line), line
        assert int(re.search(r":(\d+) ", line).group(1)) > 0
    finally:
        server.terminate()
        server.wait(timeout=30)
