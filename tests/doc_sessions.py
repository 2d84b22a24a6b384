"""A docs page's worked example, run as written: each ```yaml block whose first line is ``# file: NAME``
is a file, and each ```console block is a ``$ loopline ...`` line followed by what it prints."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from loopline.cli import main
from tests.doc_blocks import blocks, files


@dataclass(frozen=True)
class Page:
    files: dict[str, str]
    sessions: list[str]

    @property
    def ids(self) -> list[str]:
        return [s.splitlines()[0][2:] for s in self.sessions]


def read_page(name: str) -> Page:
    found = blocks(name)
    return Page(files(found, "yaml"), [text for kind, text in found if kind == "console"])


def run_session(page: Page, session: str, directory: Path, monkeypatch, capsys) -> tuple[list[str], int, str]:
    """Write the page's files to ``directory`` and run the session's command there (in this process):
    (its arguments, its exit status, what it printed on stdout)."""
    for name, text in page.files.items():
        (directory / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(directory)
    command = session.splitlines()[0]
    assert command.startswith("$ loopline ")
    args = shlex.split(command)[2:]
    status = main(args)
    return args, status, capsys.readouterr().out


def expected_output(session: str) -> list[str]:
    return session.rstrip("\n").splitlines()[1:]
