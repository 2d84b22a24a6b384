"""JSON over HTTP as the API accepts and answers it, on AWS and on the dev server alike.

Requests are untrusted: a body is read only when it is labelled JSON, is nested at most
``MAX_DEPTH`` deep (so no parser or later walk of the value can run out of stack), holds
only finite numbers and valid Unicode. Answers never carry ``NaN`` or ``Infinity`` (not
JSON, and refused by most parsers): a stored value holding one is answered with ``null``
in its place, as JavaScript's ``JSON.stringify`` does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 100  # nested arrays/objects in a request body (a workflow as JSON needs about 10)
NOSNIFF = ("X-Content-Type-Options", "nosniff")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A string token (escapes included) or one bracket: enough to measure nesting without parsing.
# An unterminated string runs to the end (the optional closing quote): a failed match never
# restarts at the next quote, so the scan stays linear whatever the body.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BadBody(Exception):
    """A request body that cannot be taken: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    """application/json, or a structured ``+json`` type such as application/merge-patch+json."""
    kind = media_type(content_type)
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), counted up to ``limit + 1``."""
    if text.count("[") + text.count("{") <= limit:
        return 0  # cannot exceed the limit: not worth a scan
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token == "]" or token == "}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise BadBody(400, f"the body holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadBody(400, f"the number {text[:40]} is too large")
    return value


def parse_body(body: str | None) -> Any:
    """The JSON value of a request body (``None`` when there is none); BadBody(400) if unusable."""
    if body is None or body == "":
        return None
    if nesting_depth(body) > MAX_DEPTH:
        raise BadBody(400, f"the body nests arrays or objects more than {MAX_DEPTH} deep")
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as error:
        raise BadBody(400, f"the body is not valid JSON: {error}") from None
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(value):
        raise BadBody(400, "the body holds a string that is not valid Unicode (a lone surrogate)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:  # a loop, not recursion: the value is at most MAX_DEPTH deep, but why spend stack
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """JSON text for an answer: strict JSON, never NaN or Infinity."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False)
