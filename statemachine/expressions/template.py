"""Template strings: text with ``${ ... }`` expressions in it.

``parse_template`` splits a string into literal text and parsed expressions
(cached, because the engine re-parses plan strings at run time).  The helpers
here answer the compiler's static questions (which tasks does this refer to,
which names does it use) and implement the typed-vs-interpolated rule of the
DSL: a string that is exactly one ``${...}`` yields the value with its type;
anything else yields a string with each value formatted by ``to_display``.

``$${`` writes a literal ``${`` (so a shell script can say ``$${HOME}``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import ExpressionError
from .lexer import lex_expression
from .parser import Call, Literal, Member, Name, Parser, Path, walk


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``${...}`` of a template: its tree and where it sits in the source."""
    node: Any
    start: int  # offset of "${"
    end: int  # offset just after the closing "}"


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple  # of str (literal text) and Segment

    @property
    def is_single(self) -> bool:
        """Exactly one ``${...}`` and nothing else: evaluates to a typed value."""
        return len(self.parts) == 1 and isinstance(self.parts[0], Segment)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(p for p in self.parts if isinstance(p, Segment))


def _scan(text: str, tolerant: bool = False) -> Iterator[str | Segment | ExpressionError]:
    """Yield literal text and parsed segments in order.

    With ``tolerant``, stop quietly at the first bad segment and yield the
    unparsed rest of the string as an ``ExpressionError`` instance instead of
    raising (used by the static helpers, which must not raise).
    """
    pos = 0
    buf: list[str] = []
    n = len(text)
    while pos < n:
        i = text.find("$", pos)
        if i < 0:
            buf.append(text[pos:])
            break
        buf.append(text[pos:i])
        if text.startswith("$${", i):
            buf.append("${")
            pos = i + 3
        elif text.startswith("${", i):
            try:
                tokens, end = lex_expression(text, i + 2)
                node = Parser(text, tokens).parse()
            except RecursionError:
                # Only reachable when the caller's own stack is already deep:
                # the parser's depth limit normally stops long before this.
                exc = ExpressionError("expression nested too deeply", text, i)
                if not tolerant:
                    raise exc from None
                if buf:
                    yield "".join(buf)
                yield exc
                return
            except ExpressionError as exc:
                if not tolerant:
                    raise
                if buf:
                    yield "".join(buf)
                yield exc
                return
            if buf and any(buf):
                yield "".join(buf)
            buf = []
            yield Segment(node, i, end)
            pos = end
        else:
            buf.append("$")
            pos = i + 1
    if buf and any(buf):
        yield "".join(buf)


def parse_template(text: str) -> Template:
    """Parse a string that may contain ``${...}`` parts; raises ExpressionError.

    Cached (``parse_template.cache_info()``): the engine re-parses plan strings
    on every evaluation, and parsed templates are immutable so sharing is safe.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a template must be a string, not {type(text).__name__}", "", 0)
    return _parse_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Template:
    return Template(text, tuple(_scan(text)))


parse_template.cache_info = _parse_cached.cache_info  # type: ignore[attr-defined]
parse_template.cache_clear = _parse_cached.cache_clear  # type: ignore[attr-defined]


def is_template(value: Any) -> bool:
    """True for a string containing ``${``."""
    return isinstance(value, str) and "${" in value


def has_templates(value: Any) -> bool:
    """True if any string inside ``value`` (nested dicts and lists) holds an expression."""
    return next(_strings(value), None) is not None


def _strings(value: Any) -> Iterator[str]:
    """Every template string inside nested dicts/lists (dict keys are not templates)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                yield item
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


# Fallback for text that does not parse: "tasks.<id>" or "tasks['<id>']".
_TASK_REF_RE = re.compile(
    r"(?<![A-Za-z0-9_.])tasks\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)"
    r"|\[\s*(?:'([^'\\]*)'|\"([^\"\\]*)\")\s*\])"
)


def task_references(value: Any) -> set[str]:
    """Ids of tasks referenced as ``tasks.<id>`` / ``tasks['<id>']`` anywhere in ``value``.

    Never raises on syntax errors: what parses is read exactly, the rest of a
    broken string is searched with a regular expression.
    """
    return member_references(value, "tasks")


def member_references(value: Any, root: str) -> set[str]:
    """Names read as ``<root>.<name>`` / ``<root>['<name>']`` (``tasks``, ``branches``...) in ``value``."""
    pattern = _TASK_REF_RE if root == "tasks" else re.compile(_TASK_REF_RE.pattern.replace("tasks", re.escape(root), 1))
    found: set[str] = set()
    for text in _strings(value):
        for part in _scan(text, tolerant=True):
            if isinstance(part, Segment):
                for node in walk(part.node):
                    if isinstance(node, Path) and isinstance(node.base, Name) and node.base.name == root:
                        step = node.steps[0]
                        if isinstance(step, Member):
                            found.add(step.name)
                        elif isinstance(step.expr, Literal) and isinstance(step.expr.value, str):
                            found.add(step.expr.value)
            elif isinstance(part, ExpressionError):
                # The failing segment starts at or before the error: search from
                # the last "${" up to the error so a reference just before it counts.
                start = text.rfind("${", 0, part.offset + 1) if part.expression == text else 0
                rest = text[max(start, 0):]
                for m in pattern.finditer(rest):
                    found.add(next(g for g in m.groups() if g is not None))
    return found


def root_names(value: Any) -> set[str]:
    """Every free (bare) name used by the expressions in ``value``.

    Function names are not names; strings that do not parse contribute what
    parsed before the error.
    """
    names: set[str] = set()
    for text in _strings(value):
        for part in _scan(text, tolerant=True):
            if isinstance(part, Segment):
                names.update(n.name for n in walk(part.node) if isinstance(n, Name))
    return names


def function_calls(value: Any) -> set[str]:
    """Names of the functions called by the expressions in ``value``."""
    called: set[str] = set()
    for text in _strings(value):
        for part in _scan(text, tolerant=True):
            if isinstance(part, Segment):
                called.update(n.name for n in walk(part.node) if isinstance(n, Call))
    return called

