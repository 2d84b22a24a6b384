"""docs/graph-form.md's worked examples run as written (tests/doc_sessions.py); a run's id, new on every
run, is shown on the page as ``<run-id>``. The functions example runs as the page says: its tools.py on the
import path (a directory the task user can read) and LOOPLINE_CUSTOM_MODULES=tools."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.doc_blocks import blocks, files
from tests.doc_sessions import expected_output, read_page, run_session

PAGE = read_page("graph-form.md")
PYTHON = files(blocks("graph-form.md"), "python")
# the page says the far goal fails (exit status 1), and the graph naming no callables is refused (2)
EXIT_STATUS = {"agent.yaml": 0, "far.yaml": 1, "tools_graph.yaml": 2}


def test_the_page_has_its_examples():
    assert set(PAGE.files) == {"agent.yaml", "far.yaml", "tools_graph.yaml"} and len(PAGE.sessions) == 4
    assert set(PYTHON) == {"tools.py"}


@pytest.fixture
def directory(monkeypatch):
    """The session's directory, where the task user (nobody, when the tests run as root) can read tools.py."""
    home = Path(tempfile.mkdtemp(prefix="loopline-graph-doc-"))
    os.chmod(home, 0o755)
    (home / "tools.py").write_text(PYTHON["tools.py"], encoding="utf-8")
    os.chmod(home / "tools.py", 0o644)
    monkeypatch.syspath_prepend(str(home))  # PYTHONPATH=.
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tools")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("session", PAGE.sessions, ids=PAGE.ids)
def test_a_console_block_runs_as_written(session, directory, monkeypatch, capsys):
    args, status, out = run_session(PAGE, session, directory, monkeypatch, capsys)
    assert status == EXIT_STATUS[args[-1]]
    out = re.sub(r"^run [0-9a-f]{32}:", "run <run-id>:", out, flags=re.MULTILINE)
    assert out.rstrip("\n").splitlines() == expected_output(session)
