"""The optional reason of POST /runs/{id}/cancel|pause|resume|redrive (functions/api/history.py)."""

from __future__ import annotations

import pytest

from functions.api.history import reason_of
from infra.service import ApiError


def test_no_body_or_an_object_gives_its_reason():
    assert reason_of(None) == ""
    assert reason_of({}) == ""
    assert reason_of({"reason": "duplicate order"}) == "duplicate order"


@pytest.mark.parametrize("body", [[], [{"reason": "x"}], "stop", 3, True, {"reason": 5}, {"reason": "x" * 100_000}])
def test_anything_else_is_a_400(body):
    """Found by the fuzz test: an array body was accepted as if it held no reason."""
    with pytest.raises(ApiError) as refused:
        reason_of(body)
    assert refused.value.status == 400
