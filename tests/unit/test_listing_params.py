"""GET /runs's parameters and cursor (infra/listing_params.py): what is taken, and what is a 400."""

from __future__ import annotations

import base64
import json

import pytest

from infra.listing import Position
from infra.listing_params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadQuery,
    decode_cursor,
    encode_cursor,
    iteration_page,
    run_query,
)
from statemachine.status import RunStatus


def test_defaults_and_normalised_values():
    assert run_query({}).limit == DEFAULT_LIMIT and run_query({}).status is None
    query = run_query({"status": "failed", "workflow": "billing", "since": "2030-01-31", "limit": str(MAX_LIMIT),
                       "until": "2030-02-01T12:00:00+02:00"})
    assert query.status is RunStatus.FAILED and query.workflow_id == "billing" and query.limit == MAX_LIMIT
    assert query.since == "2030-01-31T00:00:00.000Z"  # no offset: UTC
    assert query.until == "2030-02-01T10:00:00.000Z"  # converted to UTC, as times are stored


@pytest.mark.parametrize("params, fragment", [
    ({"status": "DONE"}, "'status' must be one of"),
    ({"since": "next tuesday"}, "'since'"),
    ({"until": "1969-12-31"}, "between 1970 and 9998"),
    ({"since": "9999-12-31T23:59:59-05:00"}, "'since'"),  # past year 9999 once in UTC
    ({"limit": "0"}, "'limit'"), ({"limit": "201"}, "'limit'"), ({"limit": "٣"}, "'limit'"),
    ({"limit": "99999999999999999999"}, "'limit'"),
    ({"workflow": "a\nb"}, "'workflow'"), ({"workflow": "x" * 257}, "'workflow'"),
    ({"order": "asc"}, "unknown parameter 'order'"),
])
def test_bad_parameters(params, fragment):
    with pytest.raises(BadQuery, match=fragment.replace("(", r"\(")):
        run_query(params)


def test_a_cursor_round_trips_for_the_same_filters_only():
    query = run_query({"status": "RUNNING", "limit": "5"})
    cursor = encode_cursor(Position("2030-01-01T00:00:00.000Z", "run-1"), query)
    assert run_query({"status": "RUNNING", "limit": "5", "cursor": cursor}).after == Position(
        "2030-01-01T00:00:00.000Z", "run-1")
    assert run_query({"status": "RUNNING", "limit": "50", "cursor": cursor}).after is not None  # limit may change
    with pytest.raises(BadQuery, match="'cursor'"):
        run_query({"status": "FAILED", "cursor": cursor})


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "%%%", "é" * 10, "A" * 2000, _b64([1]), _b64({"c": "2030-01-01T00:00:00.000Z", "r": "x"}),
    _b64({"c": "2030-01-01", "r": "x", "f": "0"}), _b64({"c": 5, "r": "x", "f": "0"}),
    _b64({"c": "2030-01-01T00:00:00.000Z", "r": "", "f": "0"}),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_garbled_or_forged_cursors_are_refused(cursor):
    with pytest.raises(BadQuery, match="'cursor'"):
        decode_cursor(cursor, run_query({}))


def test_iteration_pages():
    assert iteration_page({}, 100) == (0, 50)
    assert iteration_page({"cursor": "40", "limit": "20"}, 100) == (40, 20)
    for bad in ({"cursor": "-1"}, {"cursor": "1e3"}, {"limit": "101"}, {"cursor": "9" * 12}, {"page": "1"}):
        with pytest.raises(BadQuery):
            iteration_page(bad, 100)
