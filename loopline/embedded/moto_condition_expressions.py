"""moto's reading of a ConditionExpression, its tokens kept per string, with the same answers.

Each conditional write of the engine (every claim, finish and history entry) carries a condition,
and moto 5 reads it twice per UpdateItem (the response handler checks the names and values it uses,
the backend evaluates it), each time splitting the string into tokens by trying a list of regular
expressions at every position, compiled anew for each token. The tokens depend on the string alone
(the names and values are put in later, in the parse that follows), and the parse reads them from
its own copy of the sequence without changing them (they are tuples; none of the parse's steps
appends to a token's empty list of children). So they are kept per string: the parse gets a new
deque of the same tokens. A string moto cannot split raises, as before, each time.
Installed once per process (EmbeddedAws), not taken back; tests/component/moto_answers.py's
conditions are answered the same with and without it (test_moto_dynamodb_speedups.py).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .moto_patching import install_once

MAX_KEPT = 1024  # the engine's conditions are a few dozen strings; past this many, moto splits anew
tokens: dict[str, tuple[Any, ...]] = {}


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
