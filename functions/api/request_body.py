"""A request's JSON object body, read one way for every route (the JSON rules are infra/json_http.py's)."""

from __future__ import annotations

from typing import Any

from infra.json_http import BadBody, parse_body
from infra.service import ApiError


def json_value(raw: str | None) -> Any:
    """Any JSON value (``None`` for no body); a 4xx for what is not JSON."""
    try:
        return parse_body(raw)
    except BadBody as error:
        raise ApiError(error.status, error.message) from None


def json_object(raw: str | None, example: str = "") -> dict:
    """The body as a JSON object; a 400 for anything else. ``example`` completes the message."""
    body = json_value(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object" + (f", e.g. {example}" if example else ""))
    return body


def optional_json_object(raw: str | None, example: str = "") -> dict | None:
    """``None`` for no body at all, else the body as a JSON object.

    Only a missing or zero-length body is "no body": a body of blanks is no JSON and is refused like
    any other (schemathesis sent ``\\r\\n`` to a redrive, which once took it for none and redrove).
    A JSON ``null`` is not an object either."""
    if raw is None or raw == "":
        return None
    body = json_value(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object" + (f", e.g. {example}" if example else "") + ", or empty")
    return body
