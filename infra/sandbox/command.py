"""A shell task's argument list: the command as written is split first, then each argument is filled in.

A string command is split the way :func:`shlex.split` splits (spaces separate
words, quotes group them, a backslash escapes), but every ``${...}`` in it is one
opaque piece however many spaces or quotes it holds, and it is evaluated only
after the split, inside its own argument. So run data never decides where an
argument ends: an input ``a b --flag`` (or ``x'; rm -rf /``) stays one argument.
A list command is rendered item by item, each item one argument.
"""

from __future__ import annotations

from typing import Any

from statemachine.expressions import EvalContext, evaluate, render, to_display
from statemachine.expressions.lexer import lex_expression

from ..tasks.base import TaskFailure
from ..tasks.common import INVALID_CONFIG, text

_SPACE = " \t\r\n"


class _Word:
    """One argument being read: literal text and ``${...}`` sources, in order."""

    def __init__(self) -> None:
        self.parts: list[tuple[bool, str]] = []  # (is_expression, text)
        self.started = False  # '' and "" make an (empty) argument too

    def literal(self, chars: str) -> None:
        self.started = True
        if self.parts and not self.parts[-1][0]:
            self.parts[-1] = (False, self.parts[-1][1] + chars)
        else:
            self.parts.append((False, chars))

    def expression(self, source: str) -> None:
        self.started = True
        self.parts.append((True, source))


def split_command(command: str) -> list[list[tuple[bool, str]]]:
    """The words of ``command``, each a list of (is_expression, text) parts; ``$${`` is a literal ``${``."""
    words: list[_Word] = []
    word = _Word()
    quote = ""
    i, n = 0, len(command)
    while i < n:
        ch = command[i]
        if command.startswith("$${", i):
            word.literal("${")
            i += 3
        elif command.startswith("${", i):
            _, end = lex_expression(command, i + 2)  # the expression language decides where it ends
            word.expression(command[i:end])
            i = end
        elif quote == "'":
            if ch == "'":
                quote = ""
            else:
                word.literal(ch)
            i += 1
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == "\\" and i + 1 < n and command[i + 1] in '"\\':
                word.literal(command[i + 1])
                i += 1
            else:
                word.literal(ch)
            i += 1
        elif ch in _SPACE:
            if word.started:
                words.append(word)
                word = _Word()
            i += 1
        elif ch in "'\"":
            quote = ch
            word.started = True
            i += 1
        elif ch == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            word.literal(command[i + 1])
            i += 2
        else:
            word.literal(ch)
            i += 1
    if quote:
        raise ValueError("No closing quotation")
    if word.started:
        words.append(word)
    return [w.parts for w in words]


def _argument(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise TaskFailure(INVALID_CONFIG, "'config.command' items must be strings or numbers")
    return text({"v": value}, "v") or ""


def command_argv(command: Any, scope, ctx: EvalContext | None) -> list[str]:
    """The argument list of a shell task's raw ``config.command``, rendered with ``scope``.

    Raises ``InvalidConfig`` for a command that is missing, empty or malformed, and the
    engine's ``ExpressionError`` for an expression that fails."""
    if isinstance(command, str):
        try:
            words = split_command(command)
        except ValueError as exc:
            raise TaskFailure(INVALID_CONFIG, f"'config.command': {exc}") from exc
        # A value inside a string command reads as it would inside any string (to_display).
        argv = ["".join(to_display(evaluate(part, scope, ctx)) if is_expression else part
                        for is_expression, part in parts) for parts in words]
    elif isinstance(command, list):
        argv = [_argument(render(item, scope, ctx)) for item in command]
    else:
        raise TaskFailure(INVALID_CONFIG, "'config.command' is required: a list of arguments or a string")
    if not argv or not argv[0]:
        raise TaskFailure(INVALID_CONFIG, "'config.command' is empty")
    if any("\0" in arg for arg in argv):
        raise TaskFailure(INVALID_CONFIG, "'config.command' arguments cannot contain NUL characters")
    return argv
