"""The value model: JSON-like data with JavaScript-flavoured formatting.

Values are ``None``, ``bool``, ``int``, ``float``, ``str``, lists (``list`` or
``tuple``) and objects (any ``Mapping``).  Nothing here touches attributes of
other Python objects: an unknown type is only ever shown with ``str()``.

Choices documented here because every module relies on them:

* **Truthiness is Python-like**: ``null``, ``false``, ``0``, ``0.0``, ``""``,
  ``[]`` and ``{}`` are falsy; everything else is truthy.  (JavaScript treats
  ``[]``/``{}`` as truthy, which surprises people writing ``when:`` guards.)
* **Equality is deep and typed**: ``1 == 1.0`` is true, ``true == 1`` is false,
  lists and objects compare element by element.
* **Display** (used for interpolation) is JavaScript's ``String(x)`` for
  scalars and ``JSON.stringify`` for lists/objects: ``23`` not ``23.0``,
  ``true``/``false``/``null``, compact JSON without ASCII escaping.

The formatting and comparison walks are iterative (an explicit stack), so deep
data cannot overflow Python's recursion limit, and they are size-capped so
cyclic or huge data fails with an ExpressionError instead of hanging.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from .errors import ExpressionError

MAX_RESULT = 1_000_000  # characters of a string / items of a list an expression may build
_MAX_COMPARE_STEPS = 5_000_000


def kind(value: Any) -> str:
    """The language's name for a value's type (used in error messages too)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """ints and floats, but not bools (which Python counts as ints)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float, str, list, tuple, Mapping)):
        return bool(value)
    return True


def deep_equal(a: Any, b: Any) -> bool:
    stack = [(a, b)]
    steps = 0
    while stack:
        x, y = stack.pop()
        steps += 1
        if steps > _MAX_COMPARE_STEPS:
            raise ExpressionError("values too large to compare")
        kx, ky = kind(x), kind(y)
        if kx != ky:
            return False
        if kx == "list":
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif kx == "object":
            if len(x) != len(y) or any(k not in y for k in x):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def js_number(x: int | float) -> str:
    """Format a number as JavaScript's ``String(x)`` does."""
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 2**53:  # exact; larger ones use the shortest digits below
        return str(int(x))
    # repr gives the shortest round-tripping digits; re-layout them by the
    # ECMAScript Number::toString rules (exponent only below 1e-6 or from 1e21).
    sign, digit_tuple, exp = Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)  # a finite x: as_tuple's exponent is a number, not 'n' or 'F'
    exp += len("".join(map(str, digit_tuple))) - len(digits)
    k = len(digits)
    n = exp + k  # value = 0.<digits> * 10**n
    neg = "-" if sign else ""
    if k <= n <= 21:
        return neg + digits + "0" * (n - k)
    if 0 < n <= 21:
        return neg + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return neg + "0." + "0" * (-n) + digits
    e = n - 1
    mant = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{neg}{mant}e{'+' if e >= 0 else '-'}{abs(e)}"


def _scalar_json(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return "null"  # as JSON.stringify does
    if is_number(value):
        return js_number(value)
    return json.dumps(_other_to_str(value), ensure_ascii=False)


def _other_to_str(value: Any) -> str:
    """Non-JSON values that may sit in a scope: dates as ISO text, else str()."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() == timezone.utc.utcoffset(None):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return js_number(float(value))
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def to_json(value: Any, limit: int = MAX_RESULT) -> str:
    """Compact JSON (``JSON.stringify``-style numbers), at most ``limit`` characters."""
    out: list[str] = []
    size = 0
    # Work items: ("raw", text) to emit, ("val", value) to serialise.
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack:
        raw, item = stack.pop()
        if raw:
            chunk = item
        elif isinstance(item, Mapping):
            stack.append((True, "}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, val = entries[i]
                stack.append((False, val))
                key_text = key if isinstance(key, str) else to_display(key)
                stack.append((True, ("," if i else "") + json.dumps(key_text, ensure_ascii=False) + ":"))
            chunk = "{"
        elif isinstance(item, (list, tuple)):
            stack.append((True, "]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append((False, item[i]))
                if i:
                    stack.append((True, ","))
            chunk = "["
        else:
            chunk = _scalar_json(item)
        size += len(chunk)
        if size > limit:
            raise ExpressionError("result too large")
        out.append(chunk)
    return "".join(out)


def to_display(value: Any) -> str:
    """How a value reads inside an interpolated string (JavaScript-like)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if is_number(value):
        return js_number(value)
    if isinstance(value, (Mapping, list, tuple)):
        return to_json(value)
    return _other_to_str(value)


def check_size(value: Any) -> Any:
    """Fail on strings/lists over MAX_RESULT; returns the value for chaining."""
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_RESULT:
        raise ExpressionError("result too large")
    return value


def check_number(value: int | float) -> int | float:
    """Fail on infinities and absurdly large ints (which str() could not print)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError("number too large")
    elif value.bit_length() > 1024:
        raise ExpressionError("number too large")
    return value
