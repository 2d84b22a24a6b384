"""The project's docs stand alone: every relative link in README.md and docs/ names a file of this
repository that exists (never `../shared/...` or anything else outside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and [text]: target; a target with a scheme (https:, mailto:) is not a file.
_INLINE = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def links(text: str) -> list[str]:
    text = _FENCE.sub("", text)  # code is not a link
    text = re.sub(r"`[^`\n]*`", "", text)
    return _INLINE.findall(text) + _REFERENCE.findall(text)


def problems(page: Path, text: str | None = None) -> list[str]:
    """What is wrong with the links of ``page`` (its ``text`` if given, else what the file holds)."""
    found = []
    for target in links(page.read_text(encoding="utf-8") if text is None else text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (page.parent / path).resolve()
        if path.startswith("/") or not resolved.is_relative_to(ROOT):
            found.append(f"{target}: outside the repository")
        elif not resolved.exists():
            found.append(f"{target}: no such file")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_stays_in_the_repository_and_exists(page):
    assert problems(page) == []


def test_the_check_sees_what_it_must():
    """The checker itself: a link out of the repository and one to a missing file are both found."""
    page = ROOT / "docs" / "example-page.md"  # never written: the text is given
    text = ("See [the DSL](../../shared/docs/dsl.md), [gone](missing.md#part), [ok](language.md#loops), "
            "[web](https://example.com/x), [anchor](#here), `[code](../nope.md)`.\n\n[ref]: ../../elsewhere.md\n")
    assert links(text) == ["../../shared/docs/dsl.md", "missing.md#part", "language.md#loops",
                           "https://example.com/x", "#here", "../../elsewhere.md"]
    assert [p.split(":")[0] for p in problems(page, text)] == [
        "../../shared/docs/dsl.md", "missing.md#part", "../../elsewhere.md"]
