"""Load workflow YAML into plain data plus a map of where every piece was written.

Why not ``yaml.safe_load``: it forgets positions, silently keeps the last of
two equal keys, and follows YAML 1.1, where ``on``, ``yes``, ``no``, ``off``
are booleans, ``2024-01-01`` is a date (not JSON) and ``0755`` is octal. A
workflow author writing ``branch: no`` or ``trigger: on`` means the string.

So this module composes nodes with PyYAML's safe machinery and builds the data
itself, with a resolver following the YAML 1.2 core schema:

- booleans are only ``true``/``false`` (also ``True``/``TRUE``/...);
- null is ``null``/``Null``/``NULL``/``~`` or nothing;
- integers are decimal, ``0o17`` or ``0x1F``; floats as in JSON plus
  ``.inf``/``.nan``;
- everything else, timestamps included, is a string.

Explicit standard tags (``!!str``, ``!!int``, ...) are honoured; any other tag
is an error. Merge keys (``<<: *anchor``) are supported. Mapping keys are
always strings (their source text), so the data is JSON-shaped.

Positions are 1-based. ``SourceMap`` is keyed by paths: tuples of mapping keys
and sequence indexes from the document root, e.g. ``("workflow", "tasks", 0,
"id")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from statemachine.diagnostics import Diagnostic

Path = tuple[Any, ...]

_T = "tag:yaml.org,2002:"
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# Alias expansion can make a tiny document huge ("billion laughs"); a workflow
# never needs more than this many values.
MAX_VALUES = 200_000


class _Resolver(BaseResolver):
    yaml_implicit_resolvers: dict = {}


_Resolver.add_implicit_resolver(_T + "bool", _BOOL_RE, list("tTfF"))
_Resolver.add_implicit_resolver(_T + "null", _NULL_RE, ["~", "n", "N", ""])
_Resolver.add_implicit_resolver(_T + "int", _INT_RE, list("-+0123456789"))
_Resolver.add_implicit_resolver(_T + "float", _FLOAT_RE, list("-+0123456789."))
_Resolver.add_implicit_resolver(_T + "merge", re.compile(r"^(?:<<)$"), ["<"])


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


@dataclass(frozen=True)
class Loc:
    """Where a value (or key) was written: 1-based line/col plus its source span."""

    line: int
    col: int
    start: int = 0  # character offsets into the text, end exclusive
    end: int = 0
    style: str | None = None  # None (plain), "'", '"', "|", ">" ; "{" / "[" for collections


@dataclass
class SourceMap:
    text: str
    keys: dict[Path, Loc] = field(default_factory=dict)
    values: dict[Path, Loc] = field(default_factory=dict)

    def value(self, path: Path) -> Loc | None:
        return self.values.get(tuple(path))

    def key(self, path: Path) -> Loc | None:
        return self.keys.get(tuple(path))

    def find(self, path: Path, prefer_key: bool = False) -> Loc:
        """The position of ``path``, or of its nearest parent that was written."""
        path = tuple(path)
        while True:
            first, second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            loc = first.get(path) or second.get(path)
            if loc is not None:
                return loc
            if not path:
                return Loc(1, 1)
            path = path[:-1]

    def at_offset(self, path: Path, value: str, offset: int) -> tuple[int, int]:
        """Line/col of ``value[offset]`` where ``value`` is the scalar written at ``path``.

        Walks the source span and the parsed string together: whitespace in
        the value consumes one whitespace character of the source, anything
        else skips ahead to its match. That is exact for plain and quoted
        scalars on one line and for literal blocks (indentation is skipped),
        and close for folded or escaped text.
        """
        loc = self.find(path)
        if loc.end <= loc.start:
            return loc.line, loc.col
        src, j = self.text, loc.start
        if loc.style in ("'", '"'):
            j += 1
        elif loc.style in ("|", ">"):
            newline = src.find("\n", j, loc.end)
            j = loc.end if newline < 0 else newline + 1
        offset = max(0, min(offset, len(value)))
        for ch in value[:offset]:
            k = _match(src, j, loc.end, ch)
            if k is not None:
                j = k + 1
        if offset < len(value):
            k = _match(src, j, loc.end, value[offset])
            j = k if k is not None else j
        return _line_col(src, j)


def _match(src: str, j: int, end: int, ch: str) -> int | None:
    if j >= end:
        return None
    if ch.isspace():
        return j if src[j].isspace() else None
    k = src.find(ch, j, end)
    return k if k >= 0 else None


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _loc(node: Node) -> Loc:
    style = getattr(node, "style", None)
    if isinstance(node, (MappingNode, SequenceNode)):
        style = "{" if node.flow_style else None
    return Loc(node.start_mark.line + 1, node.start_mark.column + 1,
               node.start_mark.index, node.end_mark.index, style)


class _Builder:
    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.smap = SourceMap(text)
        self.diagnostics: list[Diagnostic] = []
        self.count = 0
        self.active: set[int] = set()

    def error(self, loc: Loc, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.filename, loc.line, loc.col, message))

    def build(self, node: Node, path: Path) -> Any:
        self.smap.values.setdefault(path, _loc(node))
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooBig(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.error(_loc(node), "recursive alias: a value contains itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self.check_tag(node, "seq")
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            self.check_tag(node, "map")
            assert isinstance(node, MappingNode)  # scalars returned above: a collection is one or the other
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def check_tag(self, node: Node, kind: str) -> None:
        if node.tag != _T + kind:
            self.error(_loc(node), f"unsupported YAML tag {node.tag!r}")

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, Loc] = {}
        merged: list[MappingNode] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _T + "merge":
                merged.extend(self.merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(_loc(key_node), "mapping keys must be plain strings")
                continue
            key, kloc = key_node.value, _loc(key_node)
            if key in first_seen:
                first = first_seen[key]
                self.error(kloc, f"duplicate key '{key}' (first defined at {first.line}:{first.col})")
                continue
            first_seen[key] = kloc
            self.smap.keys[path + (key,)] = kloc
            out[key] = self.build(value_node, path + (key,))
        # Explicit keys win over merged ones; earlier merge sources win over later ones.
        for source in merged:
            for key_node, value_node in source.value:
                if isinstance(key_node, ScalarNode) and key_node.value not in out:
                    key = key_node.value
                    self.smap.keys[path + (key,)] = _loc(key_node)
                    out[key] = self.build(value_node, path + (key,))
        return out

    def merge_sources(self, node: Node) -> list[MappingNode]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        good = [n for n in items if isinstance(n, MappingNode)]
        if len(good) != len(items):
            self.error(_loc(node), "a merge key '<<' needs a mapping or a list of mappings")
        return good

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag == _T + "str":
            return text
        try:
            if tag == _T + "null":
                if not _NULL_RE.match(text):
                    raise ValueError
                return None
            if tag == _T + "bool":
                if not _BOOL_RE.match(text):
                    raise ValueError
                return text.lower() == "true"
            if tag == _T + "int":
                if text.startswith(("0o", "0x")):
                    return int(text[2:], 8 if text[1] == "o" else 16)
                return int(text)
            if tag == _T + "float":
                lowered = text.lower().lstrip("+")
                if lowered in (".inf", "-.inf", ".nan"):
                    return float(lowered.replace(".", ""))
                return float(text)
        except ValueError:
            self.error(_loc(node), f"invalid value {text!r} for tag {tag.replace(_T, '!!')}")
            return text
        self.error(_loc(node), f"unsupported YAML tag {tag!r}")
        return text


class _TooBig(Exception):
    def __init__(self, node: Node):
        self.node = node


def load_yaml(text: str, filename: str) -> tuple[Any, SourceMap, list[Diagnostic]]:
    """Parse ``text``; return (data, source map, diagnostics).

    A syntax error gives one diagnostic and ``None`` data; other problems
    (duplicate keys, bad tags) are all reported and the data is still built.
    """
    builder = _Builder(text, filename)
    try:
        root = _Loader(text).get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context:
            # PyYAML splits some messages as context="expected X", problem="but found Y".
            if message.startswith("but "):
                message = f"{exc.context}, {message}"
            else:
                message = f"{message} ({exc.context})"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, builder.smap, [Diagnostic(filename, line, col, f"invalid YAML: {message}")]
    except yaml.YAMLError as exc:  # reader errors (control characters) carry a position too
        line, col = _line_col(text, getattr(exc, "position", 0) or 0)
        return None, builder.smap, [Diagnostic(filename, line, col, f"invalid YAML: {exc}")]
    except RecursionError:  # PyYAML composes recursively; no workflow nests this deep
        return None, builder.smap, [Diagnostic(filename, 1, 1, "invalid YAML: nested too deeply")]
    if root is None:
        return None, builder.smap, []
    try:
        data = builder.build(root, ())
    except RecursionError:
        return None, builder.smap, [Diagnostic(filename, 1, 1, "invalid YAML: nested too deeply")]
    except _TooBig as exc:
        loc = _loc(exc.node)
        return None, builder.smap, [Diagnostic(filename, loc.line, loc.col,
                                               f"document too large: more than {MAX_VALUES} values "
                                               "after alias expansion")]
    return data, builder.smap, builder.diagnostics
