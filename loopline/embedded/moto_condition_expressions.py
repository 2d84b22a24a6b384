"""moto's reading of a ConditionExpression, its tokens kept per string, with the same answers.

Each conditional write of the engine (every claim, finish and history entry) carries a condition,
and moto 5 reads it twice per UpdateItem (the response handler checks the names and values it uses,
the backend evaluates it), each time splitting the string into tokens by trying a list of regular
expressions at every position, compiled anew for each token. The tokens depend on the string alone
(the names and values are put in later, in the parse that follows), and the parse reads them from
its own copy of the sequence without changing them (they are tuples; none of the parse's steps
appends to a token's empty list of children). So they are kept per string: the parse gets a new
deque of the same tokens. A string moto cannot split raises, as before, each time.

And each conditional write parses its condition twice with the very same names and values: the
response handler parses it to check which names and values it uses, and passes the same dicts on to
the backend, which parses it again to evaluate it. The parse is a function of the string, the names
and the values; evaluating its result against an item changes nothing in it. So a thread's last
parse is kept, and the next parse of the same string with the same dicts (the same objects, holding
what they held) returns the same condition and finds the same names and values.
Installed once per process (EmbeddedAws), not taken back; tests/component/moto_answers.py's
conditions are answered the same with and without it (test_moto_dynamodb_speedups.py).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .moto_patching import install_once

MAX_KEPT = 1024  # the engine's conditions are a few dozen strings; past this many, moto splits anew
tokens: dict[str, tuple[Any, ...]] = {}
_last = threading.local()  # .parse: (string, names, values, their contents then, names found, values found, op)


def install_condition_expression_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser._lex_condition_expression

    def lex_condition_expression(self: Any) -> deque[Any]:
        kept = tokens.get(self.condition_expression)
        if kept is not None:
            return deque(kept)
        lexed = original(self)
        if len(tokens) < MAX_KEPT:
            tokens[self.condition_expression] = tuple(lexed)
        return lexed

    ConditionExpressionParser._lex_condition_expression = lex_condition_expression  # type: ignore[method-assign]

    original_parse = ConditionExpressionParser.parse

    def parse(self: Any) -> Any:
        names, values = self.expression_attribute_names, self.expression_attribute_values
        last = getattr(_last, "parse", None)
        if last is not None and last[0] == self.condition_expression and last[1] is names and last[2] is values \
                and last[3] == _contents(names, values):
            self.expr_attr_names_found.extend(last[4])
            self.expr_attr_values_found.extend(last[5])
            return last[6]
        op = original_parse(self)
        _last.parse = (self.condition_expression, names, values, _contents(names, values),
                       list(self.expr_attr_names_found), list(self.expr_attr_values_found), op)
        return op

    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]


def _contents(names: Any, values: Any) -> tuple[Any, Any]:
    """What the dicts hold, to tell them changed since (moto does not change them between its two reads)."""
    return (dict(names) if names is not None else None,
            {key: dict(value) if isinstance(value, dict) else value for key, value in values.items()}
            if values is not None else None)
