"""Parser: tokens of one ``${...}`` body -> an immutable syntax tree.

A Pratt (precedence-climbing) parser, chosen because its recursion depth grows
with the *nesting* of the expression, not with its length:

* left-associative chains of one precedence level (``a + b - c + ...``,
  ``a && b && ...``) become one flat node, and member/index chains
  (``a.b[0].c``) become one ``Path`` node, so the evaluator walks them in a
  loop instead of recursing once per operator;
* everything that does recurse (parentheses, list/object items, call
  arguments, unary operators, ternary branches) passes through ``_expr``,
  which counts the depth and stops at ``MAX_DEPTH`` with an ExpressionError
  long before Python's own recursion limit.

Precedence, loosest first (JavaScript's order, plus Python's ``not``):

    ?:  (right-assoc)   ||/or   &&/and   not   == != === !==
    < <= > >= in, not in    + -    * / %    unary ! - +    . [] call

``not`` binds looser than comparisons, as in Python (``not a == b`` is
``not (a == b)``); ``!`` binds tightly, as in JavaScript (``!a == b`` is
``(!a) == b``).  ``===``/``!==`` are accepted as aliases of ``==``/``!=``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator

from .errors import ExpressionError
from .functions import SIGNATURES
from .lexer import Token

MAX_DEPTH = 100

BP_TERNARY, BP_OR, BP_AND, BP_NOT, BP_EQ, BP_REL, BP_ADD, BP_MUL, BP_UNARY = range(1, 10)

# token text -> (binding power, canonical operator)
_INFIX: dict[str, tuple[int, str]] = {
    "||": (BP_OR, "or"), "or": (BP_OR, "or"),
    "&&": (BP_AND, "and"), "and": (BP_AND, "and"),
    "==": (BP_EQ, "=="), "===": (BP_EQ, "=="), "!=": (BP_EQ, "!="), "!==": (BP_EQ, "!="),
    "<": (BP_REL, "<"), "<=": (BP_REL, "<="), ">": (BP_REL, ">"), ">=": (BP_REL, ">="),
    "in": (BP_REL, "in"),
    "+": (BP_ADD, "+"), "-": (BP_ADD, "-"),
    "*": (BP_MUL, "*"), "/": (BP_MUL, "/"), "%": (BP_MUL, "%"),
}
_LITERAL_NAMES = {"true": True, "false": False, "null": None}


# --- syntax tree -----------------------------------------------------------
# Every node has ``offset``: where it starts in the template string, used for
# error positions.  Nodes are frozen because parsed templates are cached and
# shared between evaluations.

@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # only scalars: str, int, float, bool, None
    offset: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple
    offset: int


@dataclass(frozen=True, slots=True)
class ObjectLit:
    keys: tuple[str, ...]
    values: tuple
    offset: int


@dataclass(frozen=True, slots=True)
class Member:  # a ".name" step of a Path
    name: str
    offset: int  # of the name


@dataclass(frozen=True, slots=True)
class Index:  # a "[expr]" step of a Path
    expr: Any
    offset: int  # of the index expression


@dataclass(frozen=True, slots=True)
class Path:
    base: Any
    steps: tuple  # of Member | Index
    offset: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "+", "!"
    operand: Any
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    """``operands[0] ops[0] operands[1] ops[1] ...`` left to right, one precedence level."""
    operands: tuple
    ops: tuple[tuple[str, int], ...]  # (operator, offset of the operator)
    offset: int


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "and" | "or"
    operands: tuple
    offset: int


@dataclass(frozen=True, slots=True)
class Ternary:
    cond: Any
    then: Any
    other: Any
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple
    offset: int  # of the function name


def walk(node: Any) -> Iterator[Any]:
    """Every node of a tree (iteratively, so deep trees cannot overflow)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
            continue
        if not hasattr(item, "__dataclass_fields__"):
            continue
        yield item
        for f in reversed(fields(item)):
            value = getattr(item, f.name)
            if isinstance(value, tuple) or hasattr(value, "__dataclass_fields__"):
                stack.append(value)


# --- parser ----------------------------------------------------------------

def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of expression"
    if tok.kind == "str":
        return "string literal"
    if tok.kind == "num":
        return f"number {tok.value!r}"
    return repr(tok.value)


class Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def parse(self) -> Any:
        if self.peek().kind == "eof":
            self.fail("empty expression", self.peek())
        node = self._expr(0)
        tok = self.peek()
        if tok.kind != "eof":
            self.fail(f"unexpected {_describe(tok)}", tok)
        return node

    # token helpers
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def is_op(self, value: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "op" and tok.value == value

    def is_word(self, value: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "name" and tok.value == value

    def fail(self, message: str, tok: Token | int) -> None:
        offset = tok if isinstance(tok, int) else tok.start
        raise ExpressionError(message, self.text, offset)

    def close(self, closer: str, opener: Token) -> None:
        """Consume ``closer``; a missing one points at the opener if input ran out."""
        tok = self.peek()
        if tok.kind == "op" and tok.value == closer:
            self.next()
            return
        if tok.kind == "eof":
            self.fail(f"unclosed {opener.value!r}", opener)
        self.fail(f"expected {closer!r} but found {_describe(tok)}", tok)

    # grammar
    def _infix(self) -> tuple[int, str, int] | None:
        """(binding power, operator, token count) of the infix operator ahead."""
        tok = self.peek()
        if tok.kind == "op" and tok.value == "?":
            return BP_TERNARY, "?", 1
        if tok.kind in ("op", "name") and tok.value in _INFIX:
            bp, op = _INFIX[tok.value]
            return bp, op, 1
        if self.is_word("not") and self.is_word("in", 1):
            return BP_REL, "not in", 2
        return None

    def _expr(self, min_bp: int) -> Any:
        """An expression whose operators bind at least as tightly as ``min_bp``."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("expression nested too deeply", self.peek())
        try:
            return self._expr_body(min_bp)
        finally:
            self.depth -= 1

    def _expr_body(self, min_bp: int) -> Any:
        start = self.peek().start
        left = self._prefix(min_bp)
        # Operands and operators of the flat chain being built at level chain_bp.
        chain_bp = 0
        operands: list = []
        ops: list = []
        while True:
            info = self._infix()
            if info is None or info[0] < min_bp:
                break
            bp, op, count = info
            op_tok = self.peek()
            for _ in range(count):
                self.next()
            if op == "?":
                left = self._finish(chain_bp, operands, ops, left, start)
                chain_bp, operands, ops = 0, [], []
                then = self._expr(BP_TERNARY)
                if not self.is_op(":"):
                    tok = self.peek()
                    self.fail(f"expected ':' in conditional but found {_describe(tok)}", tok)
                self.next()
                other = self._expr(BP_TERNARY)  # right-associative
                left = Ternary(left, then, other, start)
                continue
            right = self._expr(bp + 1)  # left-associative
            if bp == chain_bp and (bp not in (BP_OR, BP_AND) or ops[0][0] == op):
                operands.append(right)
                ops.append((op, op_tok.start))
                continue
            left = self._finish(chain_bp, operands, ops, left, start)
            chain_bp, operands, ops = bp, [left, right], [(op, op_tok.start)]
        return self._finish(chain_bp, operands, ops, left, start)

    @staticmethod
    def _finish(bp: int, operands: list, ops: list, left: Any, start: int) -> Any:
        if not ops:
            return left
        if bp in (BP_OR, BP_AND):
            return Logical(ops[0][0], tuple(operands), start)
        return Binary(tuple(operands), tuple(ops), start)

    def _prefix(self, min_bp: int) -> Any:
        tok = self.peek()
        if tok.kind == "name" and tok.value == "not" and not self.is_word("in", 1):
            if min_bp > BP_NOT:
                self.fail("'not' needs parentheses here (or use '!')", tok)
            self.next()
            return Unary("!", self._expr(BP_NOT), tok.start)
        if tok.kind == "op" and tok.value in ("!", "-", "+"):
            self.next()
            operand = self._expr(BP_UNARY)
            # Fold "-5" into a literal: common, and keeps "- - - 5" chains cheap.
            if tok.value == "-" and isinstance(operand, Literal) and type(operand.value) in (int, float):
                return Literal(-operand.value, tok.start)
            return Unary(tok.value, operand, tok.start)
        return self._postfix(self._primary())

    def _primary(self) -> Any:
        tok = self.next()
        if tok.kind in ("num", "str"):
            return Literal(tok.value, tok.start)
        if tok.kind == "name":
            if tok.value in _LITERAL_NAMES:
                return Literal(_LITERAL_NAMES[tok.value], tok.start)
            if tok.value in ("and", "or", "in", "not"):
                self.fail(f"unexpected {tok.value!r}", tok)
            if self.is_op("("):
                return self._call(tok)
            return Name(tok.text, tok.start)
        if tok.kind == "op":
            if tok.value == "(":
                node = self._expr(0)
                self.close(")", tok)
                return node
            if tok.value == "[":
                return ListLit(tuple(self._items("]", tok)), tok.start)
            if tok.value == "{":
                return self._object(tok)
        if tok.kind == "eof":
            self.fail("unexpected end of expression", tok)
        self.fail(f"unexpected {_describe(tok)}", tok)

    def _items(self, closer: str, opener: Token) -> list:
        """Comma-separated expressions up to ``closer`` (a trailing comma is fine)."""
        items: list = []
        while not self.is_op(closer):
            if self.peek().kind == "eof":
                self.fail(f"unclosed {opener.value!r}", opener)
            items.append(self._expr(0))
            if self.is_op(","):
                self.next()
            elif not self.is_op(closer):
                self.close(closer, opener)
        self.next()
        return items

    def _object(self, opener: Token) -> ObjectLit:
        keys: list[str] = []
        values: list = []
        while not self.is_op("}"):
            tok = self.next()
            if tok.kind == "eof":
                self.fail("unclosed '{'", opener)
            if tok.kind not in ("name", "str"):
                self.fail(f"expected an object key but found {_describe(tok)}", tok)
            if tok.value in keys:
                self.fail(f"duplicate key {tok.value!r} in object", tok)
            if not self.is_op(":"):
                nxt = self.peek()
                self.fail(f"expected ':' after object key but found {_describe(nxt)}", nxt)
            self.next()
            keys.append(tok.text)
            values.append(self._expr(0))
            if self.is_op(","):
                self.next()
            elif not self.is_op("}"):
                self.close("}", opener)
        self.next()
        return ObjectLit(tuple(keys), tuple(values), opener.start)

    def _postfix(self, base: Any) -> Any:
        steps: list = []
        while True:
            tok = self.peek()
            if tok.kind != "op":
                break
            if tok.value == ".":
                self.next()
                name = self.next()
                if name.kind != "name":
                    self.fail(f"expected a field name after '.' but found {_describe(name)}", name)
                steps.append(Member(name.text, name.start))
            elif tok.value == "[":
                self.next()
                index_start = self.peek().start
                expr = self._expr(0)
                self.close("]", tok)
                steps.append(Index(expr, index_start))
            elif tok.value == "(":
                self.fail("only named functions can be called, as name(args)", tok)
            else:
                break
        if not steps:
            return base
        return Path(base, tuple(steps), base.offset)

    def _call(self, name: Token) -> Call:
        if name.value not in SIGNATURES:
            self.fail(f"unknown function {name.value!r}", name)
        opener = self.next()
        args = tuple(self._items(")", opener))
        low, high = SIGNATURES[name.text]
        allowed = {0, 2} if name.value == "random" else set(range(low, high + 1))
        if len(args) not in allowed:
            want = " or ".join(str(n) for n in sorted(allowed)) if len(allowed) <= 2 else f"{low} to {high}"
            plural = "" if allowed == {1} else "s"
            self.fail(f"{name.value}() takes {want} argument{plural} ({len(args)} given)", name)
        return Call(name.text, args, name.start)
