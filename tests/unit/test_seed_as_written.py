"""Seed 003's examples exactly as the seed writes them: validation names each of the seed's own mistakes
with its line and column (docs/seed-examples.md shows the same output)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from statemachine.compiler import validate_workflow

ROOT = Path(__file__).resolve().parents[2]
AS_WRITTEN = ROOT / "examples" / "seed" / "as_written"
PAGE = (ROOT / "docs" / "seed-examples.md").read_text(encoding="utf-8")


def said(name: str) -> list[str]:
    path = f"examples/seed/as_written/{name}.yaml"
    return [str(d) for d in validate_workflow((ROOT / path).read_text(encoding="utf-8"), path)] or ["ok"]


@pytest.mark.parametrize("name", ["email_digest", "data_pipeline", "content_review"])
def test_validation_says_what_the_page_shows(name):
    shown = re.search(rf"\$ loopline validate examples/seed/as_written/{name}\.yaml\n(.*?)(?=\n\$|\n```)", PAGE,
                      re.S).group(1).splitlines()
    assert said(name) == shown


def test_the_mistakes_are_the_seeds():
    assert said("email_digest") == ["ok"]
    assert any(":errors, which config.parameters does not give" in line for line in said("data_pipeline"))
    review = "\n".join(said("content_review"))
    for mistake in ("duplicate key 'tasks'", "no field 'response'", "'after_timeout'"):
        assert mistake in review


def test_the_copies_are_the_seeds_text():
    """The seed is not in this repository; its examples are, verbatim (no header comment added)."""
    for path in AS_WRITTEN.glob("*.yaml"):
        assert path.read_text(encoding="utf-8").startswith("workflow:\n")
