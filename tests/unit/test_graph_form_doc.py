"""docs/graph-form.md's worked example runs as written (tests/doc_sessions.py); a run's id, new on every
run, is shown on the page as ``<run-id>``."""

from __future__ import annotations

import re

import pytest

from tests.doc_sessions import expected_output, read_page, run_session

PAGE = read_page("graph-form.md")
EXIT_STATUS = {"agent.yaml": 0, "far.yaml": 1}  # the page says the far goal fails (exit status 1)


def test_the_page_has_its_example():
    assert set(PAGE.files) == {"agent.yaml", "far.yaml"} and len(PAGE.sessions) == 3


@pytest.mark.parametrize("session", PAGE.sessions, ids=PAGE.ids)
def test_a_console_block_runs_as_written(session, tmp_path, monkeypatch, capsys):
    args, status, out = run_session(PAGE, session, tmp_path, monkeypatch, capsys)
    assert status == EXIT_STATUS[args[-1]]
    out = re.sub(r"^run [0-9a-f]{32}:", "run <run-id>:", out, flags=re.MULTILINE)
    assert out.rstrip("\n").splitlines() == expected_output(session)
