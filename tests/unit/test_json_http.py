"""infra/json_http.py: what a request body may hold, and what an answer never holds."""

from __future__ import annotations

import json

import pytest

from infra.json_http import MAX_DEPTH, BadBody, dumps, finite, is_json_type, nesting_depth, parse_body


@pytest.mark.parametrize("content_type, expected", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("APPLICATION/JSON", True),
    (" application/json ;charset=UTF-8", True), ("application/merge-patch+json", True),
    ("application/vnd.acme.v2+json; q=1", True), ("text/plain", False), ("text/json", False),
    ("application/jsonp", False), ("application/x-www-form-urlencoded", False), ("", False), (None, False),
    ("application/json-seq", False), ("multipart/form-data; boundary=application/json", False),
])
def test_json_content_types(content_type, expected):
    assert is_json_type(content_type) is expected


def test_nesting_is_measured_outside_strings():
    assert nesting_depth("[" * 150 + "]" * 150) == MAX_DEPTH + 1  # counted up to the first level too deep
    assert nesting_depth('["' + "[" * 500 + '"]') == 1  # brackets in a string are text
    assert nesting_depth('["\\"' + "[" * 500 + '"]') == 1  # an escaped quote does not end the string
    assert nesting_depth("[" * 101 + '"' + "x" * 10) == MAX_DEPTH + 1  # an unterminated string ends the scan


def test_a_body_at_the_limit_parses_and_one_level_more_does_not():
    assert parse_body("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(BadBody) as deep:
        parse_body("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert deep.value.status == 400 and str(MAX_DEPTH) in deep.value.message
    with pytest.raises(BadBody):
        parse_body('{"a": ' * 5000 + "1" + "}" * 5000)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999", "[-1E400]"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(BadBody) as refused:
        parse_body(text)
    assert refused.value.status == 400


def test_lone_surrogates_are_refused_and_pairs_are_text():
    assert parse_body('"\\ud83d\\ude00"') == "\U0001F600"
    for text in ('"\\ud800"', '{"\\udc00": 1}', '["ok", {"deep": ["\\ud83d"]}]'):
        with pytest.raises(BadBody):
            parse_body(text)


def test_empty_and_plain_bodies():
    assert parse_body(None) is None and parse_body("") is None
    assert parse_body('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    with pytest.raises(BadBody):
        parse_body("{not json")


def test_answers_never_carry_nan_or_infinity():
    value = {"a": float("inf"), "b": [float("nan"), 1.0, {"c": float("-inf")}], "d": "Infinity"}
    text = dumps(value)
    assert json.loads(text) == {"a": None, "b": [None, 1.0, {"c": None}], "d": "Infinity"}
    assert "NaN" not in text and "Infinity" not in text.replace('"Infinity"', "")
    assert finite((1.0, float("inf"))) == [1.0, None]
    assert dumps({"plain": 1}) == '{"plain": 1}'
