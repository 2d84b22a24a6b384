"""The run listing's query parameters and its cursor, from untrusted text to a typed ``RunQuery``.

Anything malformed is a ``BadQuery`` (the API answers 400 with its message), never a server error.
The cursor is opaque to clients but not secret: base64url of the position the page ended at
(created_at, run id) and a fingerprint of the filters it was issued for. It is validated, not
signed: a made-up cursor that passes validation names a position in the same listing, which a
client could ask for with ``until`` anyway, so forging one gains nothing; one issued for other
filters, or garbled, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone

from statemachine.status import RunStatus

from .clock import iso
from .listing import Position, RunQuery

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_ITERATIONS = 50
RUN_PARAMS = frozenset({"status", "workflow", "since", "until", "limit", "cursor"})
MAX_TEXT = 256  # a workflow id, a run id: longer is no id of ours
WORKFLOW_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # a workflow id, as POST /workflows takes it
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")  # as infra/clock.iso writes it


class BadQuery(ValueError):
    """A parameter the listing cannot take; the message says which and why."""


def _text(name: str, value: str) -> str:
    if not value or len(value) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadQuery(f"'{name}' must be 1 to {MAX_TEXT} printable characters")
    return value


def _limit(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value[:6]) <= maximum:
        raise BadQuery(f"'limit' must be a whole number from 1 to {maximum}")
    return int(value)


def parse_time(name: str, value: str) -> str:
    """An ISO-8601 date or time (UTC when it names no offset) as the store writes times."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise BadQuery(f"'{name}' must be an ISO-8601 date or time, such as 2030-01-31T12:00:00Z") from None
    if not 1970 <= moment.year <= 9998:  # stored times sort as text: four-digit years only
        raise BadQuery(f"'{name}' must be between 1970 and 9998")
    return iso(moment)


def _status(value: str) -> RunStatus:
    try:
        return RunStatus(value.upper())
    except ValueError:
        raise BadQuery(f"'status' must be one of {', '.join(RunStatus)}") from None


def _fingerprint(query: RunQuery) -> str:
    filters = [query.status, query.workflow_id, query.since, query.until]
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]


def run_query(params: Mapping[str, str]) -> RunQuery:
    """GET /runs's parameters as a query (BadQuery for any it cannot take, unknown names included)."""
    unknown = sorted(set(params) - RUN_PARAMS)
    if unknown:
        raise BadQuery(f"unknown parameter '{unknown[0][:40]}': the listing takes {', '.join(sorted(RUN_PARAMS))}")
    query = RunQuery(
        status=_status(params["status"]) if params.get("status") else None,
        workflow_id=_text("workflow", params["workflow"]) if params.get("workflow") else None,
        since=parse_time("since", params["since"]) if params.get("since") else None,
        until=parse_time("until", params["until"]) if params.get("until") else None,
        limit=_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT))
    if params.get("cursor"):
        query = RunQuery(query.status, query.workflow_id, query.since, query.until, query.limit,
                         after=decode_cursor(params["cursor"], query))
    return query


def count_window(params: Mapping[str, str]) -> RunQuery:
    """GET /runs/counts's parameters (workflow, since, until) as the window they count."""
    unknown = sorted(set(params) - {"workflow", "since", "until"})
    if unknown:
        raise BadQuery(f"unknown parameter '{unknown[0][:40]}': counts take workflow, since, until")
    return run_query({k: v for k, v in params.items()})


def encode_cursor(position: Position, query: RunQuery) -> str:
    body = json.dumps({"c": position.created_at, "r": position.run_id, "f": _fingerprint(query)},
                      separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query: RunQuery) -> Position:
    refused = BadQuery("'cursor' is not one this listing gave out (garbled, or issued for other filters)")
    if len(cursor) > 1024 or not cursor.isascii():
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if not isinstance(data, dict) or set(data) != {"c", "r", "f"} or not all(isinstance(v, str) for v in data.values()):
        raise refused
    if not _STAMP.fullmatch(data["c"]) or not 0 < len(data["r"]) <= MAX_TEXT or data["f"] != _fingerprint(query):
        raise refused
    return Position(data["c"], data["r"])


def iteration_page(params: Mapping[str, str], maximum: int) -> tuple[int, int]:
    """GET /runs/{id}/tasks/{task}/iterations's (first index, limit); its cursor is the next index."""
    unknown = sorted(set(params) - {"cursor", "limit"})
    if unknown:
        raise BadQuery(f"unknown parameter '{unknown[0][:40]}': iterations take cursor, limit")
    cursor = params.get("cursor") or "0"
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 9:
        raise BadQuery("'cursor' must be the 'next' value of the previous page")
    return int(cursor), _limit(params.get("limit"), DEFAULT_ITERATIONS, maximum)
