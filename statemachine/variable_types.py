"""``variables[].type``: what each declared type accepts, checked where a value is given to a variable
(its ``default`` when the workflow is validated, an ``export`` when a task ends).

Types are JSON's, as in an input schema. ``null`` is accepted whatever the type: it is a variable with no
value yet (a variable declared without a default starts as ``null``). ``integer`` accepts a whole float
(``2.0``), as JSON Schema does; a boolean is never a number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

_ACCEPTS: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}
TYPES = frozenset(_ACCEPTS)


def type_error(declared: str | None, value: Any) -> str | None:
    """Why ``value`` is not a ``declared`` value, or None when it is (or nothing is declared)."""
    if declared is None or value is None:
        return None
    accepted = isinstance(value, _ACCEPTS[declared]) and not (isinstance(value, bool) and declared != "boolean")
    if accepted and declared == "integer" and isinstance(value, float) and not value.is_integer():
        accepted = False
    if accepted:
        return None
    shown = json.dumps(value, default=str)
    return f"{shown[:60] + '...' if len(shown) > 60 else shown} is not of type '{declared}'"


def export_errors(declared: Iterable[Any], exports: Mapping[str, Any]) -> list[str]:
    """The exports that break their variable's type (``declared``: the plan's VariableSpecs)."""
    types = {spec.name: spec.type for spec in declared}
    return [f"variable '{name}': {why}" for name, value in exports.items()
            if (why := type_error(types.get(name), value)) is not None]
