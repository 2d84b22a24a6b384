"""Every workflow shipped in examples/ is valid (the README and the docs point at them)."""

from pathlib import Path

import pytest

from statemachine.compiler import validate_workflow

# examples/seed/as_written/ holds seed 003's examples exactly as the seed writes them, mistakes and all:
# tests/unit/test_seed_as_written.py checks what validation says about them.
EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").rglob("*.yaml")
                  if "as_written" not in p.parts)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    assert validate_workflow(path.read_text(), str(path)) == []


def test_there_are_examples():
    assert len(EXAMPLES) >= 6
