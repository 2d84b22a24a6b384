"""What an attempt was given, as shown: evaluated, env.* masked, bounded (statemachine/shown_input.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from statemachine.expressions import EvalContext
from statemachine.scope import build_scope
from statemachine.shown_input import MAX_SHOWN, shown_input

CTX = EvalContext(now=datetime(2026, 12, 4, tzinfo=timezone.utc), seed=1)
SCOPE = build_scope({"n": 3}, {"region": "eu"}, {}, {"API_TOKEN": "s3cr3t", "PORT": "8080"})


def test_env_values_are_masked_and_the_rest_evaluated():
    config = {"headers": {"Authorization": "Bearer ${env.API_TOKEN}"}, "count": "${inputs.n + 1}",
              "where": ["${variables.region}", "fixed"], "port": "${env.PORT}"}
    text = shown_input(config, SCOPE, CTX)
    assert text is not None and "s3cr3t" not in text and "8080" not in text
    assert json.loads(text) == {"headers": {"Authorization": "Bearer «env.API_TOKEN»"}, "count": 4,
                                "where": ["eu", "fixed"], "port": "«env.PORT»"}


def test_a_config_without_expressions_is_not_stored():
    assert shown_input({"code": "result = 1", "n": [1, 2]}, SCOPE, CTX) is None


def test_a_config_that_does_not_evaluate_masked_is_not_shown():
    # int() of a masked value fails where the real one would not: nothing is shown rather than a guess
    assert shown_input({"port": "${int(env.PORT) + 1}"}, SCOPE, CTX) is None
    assert shown_input({"x": "${inputs.missing.deeper}"}, SCOPE, CTX) is None


def test_a_large_input_is_cut_and_says_so():
    text = shown_input({"blob": "${inputs.n}" + "x" * (2 * MAX_SHOWN)}, SCOPE, CTX)
    assert text is not None and len(text) < MAX_SHOWN + 100 and text.endswith("characters in all)")
