"""Values as JSON holds them: NaN and the infinities are not numbers a workflow may carry.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (and ``1e999``
as an infinity) and writes them back, though no JSON parser elsewhere accepts
them. So wherever loopline takes JSON in (a run's input, ``json_parse``) it
reads with :func:`loads`, and a value that reaches a store or a reply never
holds one (stores write with ``allow_nan=False``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

Path = tuple[Any, ...]


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is too large (JSON numbers must be finite)")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity, -Infinity and numbers beyond a float (ValueError)."""
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def non_finite_numbers(data: Any) -> Iterator[Path]:
    """Where ``data`` holds NaN or an infinity (iterative: data may nest deeply)."""
    stack: list[tuple[Path, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield path
        elif isinstance(value, dict):
            stack.extend((path + (key,), item) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((path + (i,), item) for i, item in enumerate(value))
