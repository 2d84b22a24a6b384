"""Evaluation: a parsed template + a Scope + an EvalContext -> a value.

Semantics chosen here (see also ``values`` for truthiness/equality/display):

* ``&&``/``and`` and ``||``/``or`` short-circuit and return an *operand*, as in
  JavaScript (``${inputs.name || 'anon'}``); ``!``/``not`` return a boolean.
* ``+`` concatenates when either side is a string (the other side formatted
  with ``to_display``), adds numbers, and is an error for anything else.
  ``- * / %`` take numbers only; booleans are not numbers.
* ``/`` is true division, except that two ints dividing evenly give an int
  (``${4/2}`` is ``2``, as JavaScript would show it).  ``%`` takes the sign of
  the dividend, as in JavaScript.  Dividing by zero is an error.
* ``< <= > >=`` compare two numbers or two strings; anything else is an error.
* Member access reads dict keys only; ``.length`` gives the length of a
  string, list or object, unless the object has its own ``length`` key.
  ``x['k']`` means the same as ``x.k``.  Strings can be indexed (one-char
  string).  Negative or out-of-range indexes are errors (JavaScript would give
  ``undefined``; an error with a position is easier to debug) - wrap in
  ``default(...)`` to tolerate them.
* Reading a missing name/field/index, or any field of ``null``, raises
  ``MissingReferenceError``; only ``default(x, fallback)`` tolerates it.

Randomness: ``EvalContext`` owns a ``random.Random(seed)`` created when the
context is constructed.  ``random()`` and ``uuid()`` draw from it in
evaluation order, so building a *new* ``EvalContext(now, seed)`` with the
recorded values and rendering the same templates in the same order replays the
same values.  Reusing one context object continues its sequence (two
``uuid()`` calls in one task attempt differ); call ``ctx.fresh()`` to restart.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from . import functions
from .errors import ExpressionError, MissingReferenceError
from .parser import (
    Binary,
    Call,
    Index,
    ListLit,
    Literal,
    Logical,
    Member,
    Name,
    ObjectLit,
    Path,
    Ternary,
    Unary,
)
from .template import Segment, Template, parse_template
from .values import MAX_RESULT, check_number, check_size, deep_equal, is_number, kind, to_display, truthy

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class UnknownName(KeyError):
    """Raised by ``Scope.lookup``; the evaluator turns it into an ExpressionError."""


@dataclass
class Scope:
    """The names an expression can see.

    ``roots`` are the named roots (inputs, variables, tasks, env, loop, ...);
    ``bare`` layers are searched in order for a bare name that is not a root
    (the DSL's order: the task's own result, the loop iterator, variables,
    inputs).
    """

    roots: Mapping[str, Any] = field(default_factory=dict)
    bare: Sequence[Mapping[str, Any]] = ()

    def lookup(self, name: str) -> Any:
        if name in self.roots:
            return self.roots[name]
        for layer in self.bare:
            if name in layer:
                return layer[name]
        raise UnknownName(name)


@dataclass(frozen=True)
class EvalContext:
    """Recorded per task attempt so ``now``/``random``/``uuid`` replay identically."""

    now: datetime
    seed: int = 0
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        now = self.now
        now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
        object.__setattr__(self, "now", now)

    def __getattr__(self, name: str) -> Any:
        # Only for an attribute not set: ``rng``, made on first use from the seed (the same sequence
        # as made at once; most contexts never draw, and seeding one cost more than the rest of it).
        if name != "rng":
            raise AttributeError(name)
        rng = random.Random(self.seed)
        object.__setattr__(self, "rng", rng)
        return rng

    def fresh(self) -> "EvalContext":
        """The same context with its random sequence restarted."""
        return replace(self)


def seed_of(*parts: str) -> int:
    """A seed fixed by where an expression is evaluated (a run, a task, an iteration), for the
    evaluations that no claim records: ``when``/``skip_if``, loop conditions, workflow outputs.
    Each run draws new ``random()``/``uuid()`` values (its id is random), and evaluating the same
    place again - a redelivery, a replay - draws the same ones without storing anything."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:6], "big")


def default_context() -> EvalContext:
    return EvalContext(now=_EPOCH, seed=0)


def _located(exc: ExpressionError, text: str, offset: int) -> ExpressionError:
    """Give an error raised without a position (values/functions) one."""
    if exc.expression:
        return exc
    return type(exc)(exc.message, text, offset)


class Evaluator:
    """Evaluates the nodes of one template string (``text``) in one scope."""

    def __init__(self, text: str, scope: Scope, ctx: EvalContext) -> None:
        self.text = text
        self.scope = scope
        self.ctx = ctx

    def fail(self, message: str, offset: int, missing: bool = False) -> None:
        cls = MissingReferenceError if missing else ExpressionError
        raise cls(message, self.text, offset)

    def visit(self, node: Any) -> Any:
        return _DISPATCH[type(node)](self, node)

    # leaves and literals
    def _literal(self, node: Literal) -> Any:
        return node.value

    def _name(self, node: Name) -> Any:
        try:
            return self.scope.lookup(node.name)
        except KeyError:
            self.fail(f"unknown name {node.name!r}", node.offset, missing=True)

    def _list(self, node: ListLit) -> list:
        return [self.visit(item) for item in node.items]

    def _object(self, node: ObjectLit) -> dict:
        return {key: self.visit(value) for key, value in zip(node.keys, node.values)}

    # member / index chains
    def _path(self, node: Path) -> Any:
        value = self.visit(node.base)
        for step in node.steps:
            if isinstance(step, Member):
                value = self._get(value, step.name, node, step)
            else:
                value = self._get(value, self.visit(step.expr), node, step)
        return value

    def _where(self, node: Path, step: Member | Index) -> str:
        """The source text of the path up to ``step``, for messages."""
        text = self.text[node.offset:step.offset].rstrip().rstrip(".[").rstrip()
        return text if len(text) <= 60 else text[:57] + "..."

    def _get(self, value: Any, key: Any, node: Path, step: Member | Index) -> Any:
        off = step.offset
        shown = key if isinstance(key, str) else to_display(key)
        if value is None:
            self.fail(f"cannot read {shown!r} of null ({self._where(node, step)} is null)", off, missing=True)
        if isinstance(value, Mapping):
            if is_number(key):
                key = shown  # obj[1] reads key "1", as in JavaScript
            elif not isinstance(key, str):
                self.fail(f"object keys are strings, not {kind(key)}", off)
            if key in value:
                return value[key]
            if key == "length":
                return len(value)
            self.fail(f"no field {key!r} in {self._where(node, step)}", off, missing=True)
        if isinstance(value, (list, tuple, str)):
            if key == "length":
                return len(value)
            if isinstance(key, str):
                self.fail(f"no field {key!r} on {kind(value)} {self._where(node, step)}", off, missing=True)
            if isinstance(key, float) and key.is_integer():
                key = int(key)
            if not isinstance(key, int) or isinstance(key, bool):
                self.fail(f"{kind(value)} index must be a whole number, not {kind(key)}", off)
            if not 0 <= key < len(value):
                self.fail(
                    f"index {key} out of range for {kind(value)} of length {len(value)}", off, missing=True
                )
            return value[key]
        self.fail(f"cannot read {shown!r} of {kind(value)}", off, missing=True)

    # operators
    def _unary(self, node: Unary) -> Any:
        value = self.visit(node.operand)
        if node.op == "!":
            return not truthy(value)
        if not is_number(value):
            self.fail(f"unary {node.op!r} needs a number, not {kind(value)}", node.offset)
        return -value if node.op == "-" else value

    def _logical(self, node: Logical) -> Any:
        want = node.op == "or"  # "or" stops at the first truthy operand, "and" at the first falsy
        value = None
        for operand in node.operands:
            value = self.visit(operand)
            if truthy(value) == want:
                return value
        return value

    def _ternary(self, node: Ternary) -> Any:
        return self.visit(node.then if truthy(self.visit(node.cond)) else node.other)

    def _binary(self, node: Binary) -> Any:
        acc = self.visit(node.operands[0])
        for (op, off), operand in zip(node.ops, node.operands[1:]):
            right = self.visit(operand)
            try:
                acc = _OPERATORS[op](acc, right)
            except ExpressionError as exc:
                raise _located(exc, self.text, off) from None
        return acc

    # calls
    def _call(self, node: Call) -> Any:
        if node.name == "default":
            # Lazy: the only place a missing reference is tolerated.
            try:
                value = self.visit(node.args[0])
            except MissingReferenceError:
                value = None
            return self.visit(node.args[1]) if value is None else value
        args = [self.visit(arg) for arg in node.args]
        try:
            return check_size(functions.call(node.name, args, self.ctx))
        except ExpressionError as exc:
            raise _located(exc, self.text, node.offset) from None


_DISPATCH: dict[type, Callable[[Evaluator, Any], Any]] = {
    Literal: Evaluator._literal,
    Name: Evaluator._name,
    ListLit: Evaluator._list,
    ObjectLit: Evaluator._object,
    Path: Evaluator._path,
    Unary: Evaluator._unary,
    Logical: Evaluator._logical,
    Ternary: Evaluator._ternary,
    Binary: Evaluator._binary,
    Call: Evaluator._call,
}


# --- binary operators (raise ExpressionError without a position) ------------

def _numbers(op: str, a: Any, b: Any) -> None:
    if not (is_number(a) and is_number(b)):
        raise ExpressionError(f"{op!r} needs numbers, not {kind(a)} and {kind(b)}")


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        left, right = to_display(a), to_display(b)
        if len(left) + len(right) > MAX_RESULT:
            raise ExpressionError("result too large")
        return left + right
    if is_number(a) and is_number(b):
        return check_number(a + b)
    raise ExpressionError(f"cannot add {kind(a)} and {kind(b)}")


def _sub(a: Any, b: Any) -> Any:
    _numbers("-", a, b)
    return check_number(a - b)


def _mul(a: Any, b: Any) -> Any:
    _numbers("*", a, b)
    return check_number(a * b)


def _div(a: Any, b: Any) -> Any:
    _numbers("/", a, b)
    if b == 0:
        raise ExpressionError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        quotient, remainder = divmod(a, b)
        if remainder == 0:
            return quotient  # exact, even for ints too big for a float
    try:
        return check_number(a / b)
    except OverflowError:
        raise ExpressionError("number too large") from None


def _mod(a: Any, b: Any) -> Any:
    _numbers("%", a, b)
    if b == 0:
        raise ExpressionError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        result = abs(a) % abs(b)
        return -result if a < 0 else result
    return math.fmod(a, b)


def _compare(op: str):
    def compare(a: Any, b: Any) -> bool:
        if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise ExpressionError(f"cannot compare {kind(a)} and {kind(b)} with {op!r}")
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b

    return compare


def _contains(item: Any, container: Any) -> bool:
    if isinstance(container, (list, tuple)):
        return any(deep_equal(item, element) for element in container)
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"'in' a string needs a string on the left, not {kind(item)}")
        return item in container
    if isinstance(container, Mapping):
        if not isinstance(item, str):
            raise ExpressionError(f"'in' an object needs a string key on the left, not {kind(item)}")
        return item in container
    raise ExpressionError(f"'in' needs a list, string or object on the right, not {kind(container)}")


_OPERATORS = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "==": deep_equal,
    "!=": lambda a, b: not deep_equal(a, b),
    "<": _compare("<"),
    "<=": _compare("<="),
    ">": _compare(">"),
    ">=": _compare(">="),
    "in": _contains,
    "not in": lambda a, b: not _contains(a, b),
}


# --- public entry points ----------------------------------------------------

def _run(template: Template, scope: Scope, ctx: EvalContext) -> Any:
    text = template.source
    try:
        evaluator = Evaluator(text, scope, ctx)
        if template.is_single:
            return evaluator.visit(template.parts[0].node)
        out: list[str] = []
        size = 0
        for part in template.parts:
            piece = to_display(evaluator.visit(part.node)) if isinstance(part, Segment) else part
            size += len(piece)
            if size > MAX_RESULT:
                raise ExpressionError("result too large", text, part.start if isinstance(part, Segment) else 0)
            out.append(piece)
        return "".join(out)
    except ExpressionError as exc:
        raise _located(exc, text, 0) from None
    except RecursionError:
        raise ExpressionError("expression or data nested too deeply", text, 0) from None
    except Exception as exc:  # the boundary promise: nothing but ExpressionError escapes
        raise ExpressionError(f"internal error: {type(exc).__name__}: {exc}", text, 0) from exc


def evaluate(text: Any, scope: Scope, ctx: EvalContext | None = None) -> Any:
    """Evaluate one template string.

    Exactly one ``${...}`` and nothing else gives the typed value; text around
    or several expressions give a string; no ``${`` gives the string itself.
    Non-strings are returned unchanged (a YAML ``when: true`` is just ``True``).
    """
    if not isinstance(text, str) or "${" not in text:
        return text
    return _run(parse_template(text), scope, ctx if ctx is not None else default_context())


def render(value: Any, scope: Scope, ctx: EvalContext | None = None) -> Any:
    """Evaluate every string inside ``value`` (dict values and list items; not dict keys).

    One context is used for the whole call, so ``uuid()`` in two fields differs.
    """
    if ctx is None:
        ctx = default_context()
    try:
        return _render(value, scope, ctx)
    except RecursionError:
        raise ExpressionError("value nested too deeply to render", "", 0) from None


def _render(value: Any, scope: Scope, ctx: EvalContext) -> Any:
    if isinstance(value, str):
        return evaluate(value, scope, ctx)
    if isinstance(value, Mapping):
        return {key: _render(item, scope, ctx) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_render(item, scope, ctx) for item in value]
    return value
