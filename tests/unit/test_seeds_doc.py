"""docs/seeds.md stays honest: every test file (and test function) it names exists, every link leads to a
heading that exists, and every row it marks "works" names both a documentation section and a test.

That a relative link names an existing file is tests/unit/test_doc_links.py's check, for every page;
this one adds the anchors and the test files, which only this page leans on.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "seeds.md"
STATUSES = ("works", "changed", "partial", "missing")
_TEST = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
_LINK = re.compile(r"\]\(([^)#\s]+\.md)?(?:#([^)\s]+))?\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE)}


def named_tests(text: str) -> list[tuple[str, str | None]]:
    return _TEST.findall(text)


def test_every_named_test_file_and_function_exists():
    missing = []
    for path, function in named_tests(PAGE.read_text(encoding="utf-8")):
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif function and not re.search(rf"^def {function}\(", file.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path}::{function}")
    assert missing == []


def test_every_link_leads_to_a_heading_that_exists():
    broken = []
    for target, anchor in _LINK.findall(PAGE.read_text(encoding="utf-8")):
        page = PAGE.parent / target if target else PAGE
        if not page.is_file():
            broken.append(target)
        elif anchor and anchor not in anchors(page):
            broken.append(f"{target}#{anchor}")
    assert broken == []


def rows(text: str) -> list[list[str]]:
    """The audit tables' rows (§, feature, status, documentation, test), header and rule left out."""
    found = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 5 and cells[0] not in ("§", "---"):
            found.append(cells)
    return found


def test_every_row_has_a_status_and_every_working_row_its_evidence():
    table = rows(PAGE.read_text(encoding="utf-8"))
    assert len(table) > 100  # the three seeds' features, not a stub
    for section, feature, status, docs, tests in table:
        assert status.startswith(STATUSES), (section, feature, status)
        if status.startswith("works"):
            assert _LINK.search(docs) and named_tests(tests), (section, feature)


def test_the_checks_see_what_they_must():
    """The checkers themselves: a missing test, function and anchor are found; a good one is not."""
    assert named_tests("`tests/unit/test_seeds_doc.py::slug` and `tests/unit/nope.py`") == [
        ("tests/unit/test_seeds_doc.py", "slug"), ("tests/unit/nope.py", "")]
    assert slug("Seed 000's front door: `/workflow/start`") == "seed-000s-front-door-workflowstart"
    assert slug("when, skip_if") == "when-skip_if"
    assert "control_flowparallel" in anchors(ROOT / "docs" / "reference.md")
    assert "no-such-heading" not in anchors(ROOT / "docs" / "reference.md")
    assert rows("| § | a | status | d | t |\n|---|---|---|---|---|\n| 1 | x | works | [r](r.md) | `tests/a.py` |") == [
        ["1", "x", "works", "[r](r.md)", "`tests/a.py`"]]
