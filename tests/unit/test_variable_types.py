"""variables[].type: what each type accepts (statemachine/variable_types.py)."""

from __future__ import annotations

import pytest

from statemachine.plan import VariableSpec
from statemachine.variable_types import export_errors, type_error


@pytest.mark.parametrize("declared, value", [
    ("string", "x"), ("number", 1), ("number", 1.5), ("integer", 3), ("integer", 2.0), ("boolean", False),
    ("object", {}), ("array", []), ("string", None), ("number", None), (None, object()),
])
def test_accepted(declared, value):
    assert type_error(declared, value) is None


@pytest.mark.parametrize("declared, value", [
    ("string", 1), ("number", "1"), ("number", True), ("integer", 2.5), ("integer", False), ("boolean", 0),
    ("object", []), ("array", {}), ("array", "abc"),
])
def test_refused(declared, value):
    assert f"is not of type '{declared}'" in type_error(declared, value)


def test_export_errors_name_the_variable_and_ignore_undeclared_names():
    specs = [VariableSpec(name="n", type="integer"), VariableSpec(name="free")]
    assert export_errors(specs, {"n": 1, "free": "anything", "new": [1]}) == []
    assert export_errors(specs, {"n": "x" * 100}) == [
        "variable 'n': \"" + "x" * 59 + "... is not of type 'integer'"]
