"""bench/crash_points.py's report: where a crashed run differs from the clean one, whole, and every
reference workflow (the graph form's too) compiles."""

from __future__ import annotations

import pytest

from bench.crash_points import WORKFLOWS, difference
from statemachine.compiler import compile_workflow


def test_the_difference_names_each_differing_path_with_both_values_whole() -> None:
    long = "x" * 2000  # the report once cut every failure at 600 characters, before the difference
    clean = {"status": "COMPLETED", "outputs": {"n": 2, "text": long},
             "tasks": {"loop": ["COMPLETED", [1, 2, 3, 4], 1], "a": ["COMPLETED", 1, 1]}}
    got = {"status": "COMPLETED", "outputs": {"n": 2, "text": long},
           "tasks": {"loop": ["COMPLETED", [1, 2, 3], 1], "a": ["COMPLETED", 1, 1]}, "error": "did not end"}
    assert difference(clean, got) == {"tasks.loop": [["COMPLETED", [1, 2, 3, 4], 1], ["COMPLETED", [1, 2, 3], 1]],
                                      "error": [None, "did not end"]}
    assert difference(clean, clean) == {}
    assert difference("COMPLETED", None) == {"(run)": ["COMPLETED", None]}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_reference_workflow_compiles(name: str) -> None:
    assert compile_workflow(WORKFLOWS[name], "w.yaml").nodes
