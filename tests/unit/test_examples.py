"""Every workflow shipped in examples/ is valid (the README and the docs point at them)."""

from pathlib import Path

import pytest

from statemachine.compiler import validate_workflow

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    assert validate_workflow(path.read_text(), str(path)) == []


def test_there_are_examples():
    assert len(EXAMPLES) >= 6
