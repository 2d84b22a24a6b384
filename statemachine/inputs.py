"""Run inputs: defaults applied, then checked against the workflow's input schema.

Order (docs/dsl.md): ``inputs.defaults`` from the workflow file first, then the
schema's own ``default`` for top-level properties still missing, then
validation with JSON Schema draft 2020-12 with format checking on (so
``format: email`` is enforced, not just documented).
"""

from __future__ import annotations

import copy
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from statemachine.json_values import non_finite_numbers
from statemachine.plan import Plan


class InputError(ValueError):
    """Run input that does not fit the workflow; the message names the offending path."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def prepare_inputs(plan: Plan, data: dict | None) -> dict:
    """The inputs a run starts with; raises InputError when they do not validate."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"inputs: expected an object, got {_json_type(data)}")
    for path in non_finite_numbers(data):  # whatever edge the input came through
        raise InputError(f"{_path(path)}: NaN and infinities are not JSON numbers")
    # Deep copies: defaults from the plan must never be shared with (and mutated by) a run.
    result = copy.deepcopy(data)
    for name, value in plan.input_defaults.items():
        result.setdefault(name, copy.deepcopy(value))
    properties = plan.input_schema.get("properties")
    if isinstance(properties, dict):
        for name, prop in properties.items():
            if name not in result and isinstance(prop, dict) and "default" in prop:
                result[name] = copy.deepcopy(prop["default"])
    validator = Draft202012Validator(plan.input_schema, format_checker=FormatChecker())
    error = best_match(validator.iter_errors(result))
    if error is not None:
        raise InputError(f"{_path(error.absolute_path)}: {error.message}")
    return result


def initial_variables(plan: Plan, inputs: dict) -> dict[str, Any]:
    """A new run's variables: their defaults, and for a graph (``plan.input_into``, docs/graph-form.md)
    its context with the run's prepared input merged in, shallowly, the input's keys winning."""
    variables = {v.name: v.default for v in plan.variables}
    into = plan.input_into
    if into is not None and into in variables:
        default = variables[into]
        variables[into] = copy.deepcopy({**(default if isinstance(default, dict) else {}), **inputs})
    return variables


def _path(parts) -> str:
    text = "inputs"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__
