"""The optional reason of POST /runs/{id}/cancel|pause|resume|redrive (functions/api/history.py)."""

from __future__ import annotations

import pytest

from functions.api.history import reason_of
from functions.api.request_body import optional_json_object
from infra.service import ApiError


def test_no_body_or_an_object_gives_its_reason():
    assert reason_of(None) == ""
    assert reason_of({}) == ""
    assert reason_of({"reason": "duplicate order"}) == "duplicate order"


@pytest.mark.parametrize("body", [{"reason": 5}, {"reason": ["x"]}, {"reason": "x" * 100_000}])
def test_a_reason_that_is_no_short_string_is_a_400(body):
    with pytest.raises(ApiError) as refused:
        reason_of(body)
    assert refused.value.status == 400


@pytest.mark.parametrize("raw", ["[]", '[{"reason": "x"}]', '"stop"', "3", "true", "null", "\r\n", " "])
def test_a_body_that_is_no_object_is_a_400_before_any_reason_is_read(raw):
    """Found by the fuzz test: an array body was accepted as if it held no reason (and, later, a body
    of blanks as if there were none). The operator actions read their body with optional_json_object."""
    with pytest.raises(ApiError) as refused:
        optional_json_object(raw)
    assert refused.value.status == 400


def test_no_body_at_all_is_none():
    assert optional_json_object(None) is None and optional_json_object("") is None
    assert optional_json_object('{"reason": "r"}') == {"reason": "r"}
