"""docs/versions.md's worked example runs as written: each ```yaml block whose first line is
``# file: NAME`` is written to NAME, and each ```console block's ``$ loopline ...`` line is run in that
directory, its output and exit status 0 as the page shows them."""

from __future__ import annotations

import shlex

import pytest

from loopline.cli import main
from tests.doc_blocks import blocks, files

BLOCKS = blocks("versions.md")
FILES = files(BLOCKS, "yaml")
# The migration's sessions need a server and runs: tests/component/test_versions_doc_migration.py runs them.
SESSIONS = [text for kind, text in BLOCKS if kind == "console" and not text.startswith("$ loopline migrate")]


def test_the_page_has_its_example():
    assert set(FILES) == {"expense-v1.yaml", "expense-v2.yaml"} and len(SESSIONS) == 2


@pytest.mark.parametrize("session", SESSIONS, ids=[s.splitlines()[0][2:] for s in SESSIONS])
def test_a_console_block_runs_as_written(session, tmp_path, monkeypatch, capsys):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    command, *expected = session.rstrip("\n").splitlines()
    assert command.startswith("$ loopline ")
    assert main(shlex.split(command)[2:]) == 0
    assert capsys.readouterr().out.rstrip("\n").splitlines() == expected
