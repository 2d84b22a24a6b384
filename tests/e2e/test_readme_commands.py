"""The README's "Using it" commands, run as written (read from the README's own text), in this checkout."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.e2e.cli_process import ROOT, Running, call


def readme_command(starting: str) -> list[str]:
    """The README's command line that starts with ``starting`` (its comment dropped), as argv."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(starting):
            return shlex.split(line.split("  #", 1)[0])
    raise AssertionError(f"README.md has no command {starting!r}")


@pytest.mark.parametrize("mode", [[], ["--local"]], ids=["embedded", "local"])
def test_the_expense_report_as_the_readme_runs_it_completes_when_approved(mode):
    """README: `.venv/bin/loopline run examples/expense_report.yaml` (and the same with --local):
    the approval link on stderr answers 200 to a decision, and the run ends COMPLETED (exit 0)."""
    argv = readme_command(".venv/bin/loopline run examples/expense_report.yaml")
    assert argv[0] == ".venv/bin/loopline"
    running = Running(argv[1:] + mode)
    try:
        link = running.link("approval")
        status, body = call(link, {"decision": "APPROVED", "comments": "ok"})
        assert status == 200, body
        answer = json.loads(body)
        assert answer == {"status": "accepted", "run_id": answer["run_id"], "task_id": "request_manager_approval",
                          "decision": "APPROVED", "outcome": "APPROVED"}
        code, out = running.finish()
    finally:
        running.kill()
    assert (code, out.splitlines()[0].split(": ")[-1]) == (0, "COMPLETED"), out + "".join(running.stderr)
    assert "Traceback" not in "".join(running.stderr)
    summary = dict(line.split()[:2] for line in out.splitlines()[1:] if line.startswith("  "))
    assert summary["record_payment"] == "COMPLETED" and summary["run_payment"] == "SKIPPED"
    assert summary["process_approved_branch"] == "COMPLETED" and summary["close_report"] == "COMPLETED"


@pytest.mark.parametrize("starting", [
    ".venv/bin/loopline validate examples/hello.yaml",
    ".venv/bin/loopline run examples/hello.yaml --json",
    ".venv/bin/loopline run examples/hello.yaml --local",
    ".venv/bin/loopline --version",
    ".venv/bin/loopline dev --help",
])
def test_the_commands_that_need_nothing_else_exit_0(starting):
    """The "Using it" lines that need no server and no file of the user's own: exit 0 as written."""
    argv = readme_command(starting)
    running = Running(argv[1:])
    try:
        code, out = running.finish()
    finally:
        running.kill()
    assert code == 0, out + "".join(running.stderr)
    assert "Traceback" not in "".join(running.stderr)
    if "--json" in argv:
        assert json.loads(out)["status"] == "COMPLETED"
