"""The fenced blocks of a docs/ page, for the tests that run a page's worked example as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[tuple[str, str]]:
    """(language, text) of every fenced block of docs/``page``, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer((DOCS / page).read_text(encoding="utf-8"))]


def files(found: list[tuple[str, str]], language: str) -> dict[str, str]:
    """The blocks in ``language`` whose first line is ``# file: NAME``, by NAME (what a reader would save)."""
    return {text.splitlines()[0][len("# file: "):]: text for kind, text in found
            if kind == language and text.startswith("# file: ")}
