"""docs/python-builder.md's worked example runs as written: its ```python block whose first line is
``# file: NAME`` is written to NAME, each ```console block's ``$ loopline ...`` line is run there with the
output the page shows, and the workflow, read by the CLI's own path for a .py file, runs in local mode
with the manager approving to the outputs of the page's ```json block."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest

from infra.clock import ManualClock
from infra.service import MAX_SOURCE
from loopline.cli import main
from loopline.memory.local_mode import LocalMode
from loopline.python_workflow import yaml_of
from statemachine.compiler import compile_workflow
from tests.doc_blocks import DOCS, blocks, files
from tests.unit.test_engine_semantics import drive, settle

BLOCKS = blocks("python-builder.md")
FILES = files(BLOCKS, "python")
SESSIONS = [text for kind, text in BLOCKS if kind == "console"]
[OUTPUTS] = [json.loads(text) for kind, text in BLOCKS if kind == "json"]
INPUT = json.loads(re.search(r"--input '(\{.*?\})'", (DOCS / "python-builder.md").read_text()).group(1))


@pytest.fixture
def example(tmp_path, monkeypatch):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_its_example():
    assert set(FILES) == {"invoices.py"} and SESSIONS


@pytest.mark.parametrize("session", SESSIONS, ids=[s.splitlines()[0][2:] for s in SESSIONS])
def test_a_console_block_runs_as_written(session, example, capsys):
    command, *expected = session.rstrip("\n").splitlines()
    assert command.startswith("$ loopline ")
    assert main(shlex.split(command)[2:]) == 0
    assert capsys.readouterr().out.rstrip("\n").splitlines() == expected


def test_the_example_runs_to_the_outputs_the_page_shows(example):
    plan = compile_workflow(yaml_of("invoices.py", MAX_SOURCE), "invoices.py[yaml]")
    clock = ManualClock()
    mode = LocalMode(clock=clock, inline_code=True)
    run_id = mode.engine.start_run(plan, INPUT)
    view = settle(mode, run_id)  # the clock stands still: the 2-day deadline is far away
    [approval] = view["approvals"]
    assert approval["approver"] == "manager@example.com" and approval["title"] == "Pay 200 for 2 invoices?"
    mode.engine.decide(approval["url"].rsplit("/", 1)[1], "APPROVED")
    view = drive(mode, run_id, clock)
    assert view["status"] == "COMPLETED", view["error"]
    assert view["outputs"] == OUTPUTS
    assert view["tasks"]["tell_requester"]["status"] == "SKIPPED"



def test_python_invoices_py_prints_the_yaml_the_cli_reads(example):
    printed = subprocess.run([sys.executable, "invoices.py"], capture_output=True, text=True, check=True).stdout
    assert printed == yaml_of("invoices.py", MAX_SOURCE) + "\n"  # print() adds the last newline
