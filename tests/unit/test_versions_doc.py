"""docs/versions.md's worked example runs as written (tests/doc_sessions.py): each ```console block's
``$ loopline ...`` line, its output and exit status 0 as the page shows them."""

from __future__ import annotations

import pytest

from tests.doc_sessions import expected_output, read_page, run_session

PAGE = read_page("versions.md")
# The migration's sessions need a server and runs: tests/component/test_versions_doc_migration.py runs them.
SESSIONS = [s for s in PAGE.sessions if not s.startswith("$ loopline migrate")]


def test_the_page_has_its_example():
    assert set(PAGE.files) == {"expense-v1.yaml", "expense-v2.yaml"} and len(SESSIONS) == 2


@pytest.mark.parametrize("session", SESSIONS, ids=[s.splitlines()[0][2:] for s in SESSIONS])
def test_a_console_block_runs_as_written(session, tmp_path, monkeypatch, capsys):
    _, status, out = run_session(PAGE, session, tmp_path, monkeypatch, capsys)
    assert status == 0
    assert out.rstrip("\n").splitlines() == expected_output(session)
