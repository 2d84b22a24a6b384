"""NaN and the infinities never enter a run, never come out of an expression, never reach a store
(issue #9 item 12). The file's own numbers: tests/unit/test_admission.py; --input: tests/e2e/test_cli_inputs.py."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from infra.aws.claims import JsonAttributes
from infra.aws.payloads import InMemoryPayloads
from infra.clock import ManualClock
from loopline.memory.local_mode import LocalMode
from statemachine import json_values
from statemachine.compiler import compile_workflow
from statemachine.expressions import EvalContext, ExpressionError, Scope, evaluate
from statemachine.inputs import InputError, prepare_inputs
from tests.unit.test_compiler import src
from tests.unit.test_engine_semantics import drive


def ev(text: str, **inputs):
    return evaluate(text, Scope(roots={"inputs": inputs}), EvalContext(now=datetime(2030, 1, 1, tzinfo=timezone.utc),
                                                                       seed=7))


@pytest.mark.parametrize("text, message, offset", [
    ("${json_parse('1e999')}", "json_parse(): invalid JSON: number 1e999 is too large (JSON numbers must be finite)",
     2),
    ("${json_parse('[1, -1E400]')}", "json_parse(): invalid JSON: number -1E400 is too large", 2),
    ("${json_parse('NaN')}", "json_parse(): invalid JSON: NaN is not valid JSON", 2),
    ("${json_parse('{\"a\": -Infinity}')}", "json_parse(): invalid JSON: -Infinity is not valid JSON", 2),
    ("${1e308 * 10}", "number too large", 8),
    ("${-1e308 - 1e308}", "number too large", 9),
    ("${0 / 0}", "division by zero", 4),
    ("${0.0 % 0}", "division by zero", 6),
    ("${1e999}", "number literal too large", 2),
    ("${random(-1e308, 1e308)}", "number too large", 2),
])
def test_no_expression_yields_a_non_finite_number(text, message, offset):
    with pytest.raises(ExpressionError) as refused:
        ev(text)
    assert refused.value.message.startswith(message)
    assert (refused.value.expression, refused.value.offset) == (text, offset)


def test_large_finite_numbers_still_work():
    assert ev("${json_parse('1.5e308')}") == 1.5e308
    assert ev("${inputs.x * 2}", x=1e300) == 2e300
    assert -1e300 <= ev("${random(-1e300, 1e300)}") <= 1e300


def test_json_values_loads_refuses_what_json_has_not():
    assert json_values.loads('{"a": [1, 2.5, -3e300]}') == {"a": [1, 2.5, -3e300]}
    for text in ("NaN", "[Infinity]", '{"a": -Infinity}', "1e400", "[-1e400]"):
        with pytest.raises(ValueError):
            json_values.loads(text)
    assert list(json_values.non_finite_numbers({"a": [1.0, float("nan")], "b": (float("-inf"),)})) in (
        [("b", 0), ("a", 1)], [("a", 1), ("b", 0)])


WORKFLOW = src("""
    workflow:
      metadata: {id: finite}
      inputs:
        schema: {type: object}
      tasks:
        - {id: w, type: wait, config: {duration: 0s}}
""")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1, float("-inf")], {"deep": {"x": float("nan")}}])
def test_an_input_holding_nan_or_infinity_is_refused_whatever_edge_it_came_through(value):
    plan = compile_workflow(WORKFLOW, "w.yaml")
    with pytest.raises(InputError) as refused:
        prepare_inputs(plan, {"v": value})
    assert "NaN and infinities are not JSON numbers" in refused.value.message
    assert refused.value.message.startswith("inputs.v")
    with pytest.raises(InputError):
        LocalMode().engine.start_run(plan, {"v": value})


def test_a_task_result_holding_infinity_fails_the_task_and_is_never_stored(tmp_path, monkeypatch):
    # A database float (SQLite's 9e999), like a JSON reply's NaN, is not JSON: the task fails with
    # InvalidOutput and nothing holding it is written.
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    monkeypatch.setenv("LOOPLINE_DB_MAIN", f"sqlite://{db}")
    plan = compile_workflow(src("""
        workflow:
          metadata: {id: inf_result}
          tasks:
            - {id: q, type: database, config: {connection: main, query: "SELECT 9e999 AS x"}}
    """), "w.yaml")
    clock = ManualClock()
    mode = LocalMode(clock=clock)
    view = drive(mode, mode.engine.start_run(plan, {}), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["q"]["error"] == {"type": "InvalidOutput",
                                           "message": "the result holds NaN or an infinity, which JSON cannot carry"}
    assert view["tasks"]["q"]["output"] is None


def test_the_dynamodb_codec_never_writes_nan():
    codec = JsonAttributes(InMemoryPayloads(), threshold=8)
    assert codec.load(codec.dump({"x": 1.5})) == {"x": 1.5}
    for value in (float("nan"), {"x": [float("inf")]}):
        with pytest.raises(ValueError):
            codec.dump(value)
