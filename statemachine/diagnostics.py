"""Validation messages that point at a place in a workflow file.

Every problem the loader or the compiler finds becomes a ``Diagnostic``; the
CLI prints them one per line as ``FILE:LINE:COL: message`` (the format editors
and CI annotations understand). Lines and columns are 1-based.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core.core_schema import ErrorType


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def sort_key(self) -> tuple[int, int, str]:
        return (self.line, self.col, self.message)


class WorkflowError(Exception):
    """A workflow that cannot be compiled; carries every problem found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


# --- pydantic errors as messages at a path ---------------------------------------------

# Errors raised with PydanticCustomError (statemachine.dsl) carry final text;
# pydantic's own error types get rephrased.
_PYDANTIC_TYPES = frozenset(typing.get_args(ErrorType))
_ENTITIES = {"tasks": "task", "then": "task", "else": "task", "conditions": "condition",
             "loops": "loop", "parallel": "parallel block", "branches": "branch",
             "sub_workflows": "sub-workflow", "catch": "catch entry"}


def explain_errors(
    exc: ValidationError, data: Any, root: type[BaseModel], base: tuple = (), doc: Any = None
) -> list[tuple[tuple, bool, str]]:
    """``(path, at_key, message)`` for each error; ``path`` exists in ``data``.

    ``at_key`` asks for the position of the mapping key (unknown fields) rather
    than its value. When ``data`` is a part of the document, ``base`` is its
    path and ``doc`` the whole document (messages name the enclosing task).
    """
    doc = data if doc is None else doc
    out = []
    for err in exc.errors():
        loc, kind = tuple(err["loc"]), err["type"]
        path = _existing(data, loc)
        named = [i for i, p in enumerate(path) if isinstance(p, str)]
        field_name = _dotted(path[named[-1]:]) if named else "value"
        if kind == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'{_where(doc, base + path[:-1])}"
            message += _suggest(str(loc[-1]), _model_at(root, loc[:-1]))
            out.append((base + path, True, message))
            continue
        if kind == "missing":
            message = f"field '{loc[-1]}' is required"
        elif kind not in _PYDANTIC_TYPES:
            message = err["msg"]
        else:
            shown = f"'{err['input']}'" if isinstance(err["input"], str) else repr(err["input"])
            if isinstance(err["input"], (dict, list)):
                shown = "a mapping" if isinstance(err["input"], dict) else "a list"
            msg = re.sub(r" or instance of \w+", "", err["msg"]).replace("dictionary", "mapping")
            msg = msg[:1].lower() + msg[1:]
            message = f"invalid {field_name} {shown}: {msg}"
        out.append((base + path, False, message))
    return out


def _existing(data: Any, loc: tuple) -> tuple:
    # Walk the data along ``loc``; steps that are not in the data (union tags,
    # the name of a missing field) are dropped, so the path always exists.
    path, node = [], data
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            continue
        path.append(step)
    return tuple(path)


def _where(doc: Any, full: tuple) -> str:
    """" in task 'x'", " in retry of task 'x'", " in workflow.config" ..."""
    nodes, node = [doc], doc
    for step in full:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        nodes.append(node)
    for i in range(len(full) - 1, 0, -1):
        if isinstance(full[i], int) and full[i - 1] in _ENTITIES:
            item = nodes[i + 1]
            label = item.get("name" if full[i - 1] == "branches" else "id") if isinstance(item, dict) else None
            entity = _ENTITIES[full[i - 1]] + (f" '{label}'" if isinstance(label, str) else f" #{full[i] + 1}")
            rest = _dotted(full[i + 1:])
            return f" in {rest} of {entity}" if rest else f" in {entity}"
    return f" in {_dotted(full)}" if full else " at the top level"


def _dotted(path: tuple) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _unwrap(tp: Any) -> list[Any]:
    """The model/list types hiding in an annotation (through Annotated, Optional, Union)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    current: list[Any] = [root]
    for step in loc:
        following = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(step, str):
                for name, info in tp.model_fields.items():
                    if step in (name, info.alias):
                        following.extend(_unwrap(info.annotation))
            elif typing.get_origin(tp) is list and isinstance(step, int):
                following.extend(_unwrap(typing.get_args(tp)[0]))
        if following:
            current = following
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def _suggest(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    close = did_you_mean(key, [info.alias or name for name, info in model.model_fields.items()])
    return f" ({close})" if close else ""


def did_you_mean(word: str, names: typing.Iterable[str]) -> str:
    """"did you mean 'x'?" for the one name closest to a mistyped ``word``, or "" when none is close."""
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
