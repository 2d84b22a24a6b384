"""A database task's SQL in psycopg's placeholder style: ``:name`` -> ``%(name)s``, ``?`` -> ``%s``, ``%`` -> ``%%``.

The task's SQL is written with SQLite's placeholders (``:name`` for an object of
parameters, ``?`` for a list). psycopg reads ``%(name)s``/``%s`` and treats a
lone ``%`` as the start of one, so the query is rewritten by a scanner that
knows where PostgreSQL's SQL is *not* code: string literals (``'...'``,
``E'...'`` with backslash escapes), quoted identifiers (``"..."``),
dollar-quoted bodies (``$tag$...$tag$``) and comments (``--``, nested
``/* */``). Only outside those does ``:name`` become a placeholder; ``::`` is a
cast, and ``?`` is a placeholder only when the parameters are a list (with an
object it stays what PostgreSQL means by it, the jsonb key operators).
The values themselves never enter the text: psycopg sends them bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Converted:
    query: str  # psycopg's style: %(name)s / %s, a literal % doubled
    numbered: str  # PostgreSQL's own style ($1, $2, ...: each name once, in order), to describe the statement
    names: tuple[str, ...]  # the :names used, in order (a name may repeat)
    positional: int  # how many ? placeholders

    def values(self, parameters: dict | list) -> list:
        """The values of ``numbered``'s $1, $2, ... (the parameters must hold every name)."""
        if isinstance(parameters, list):
            return list(parameters)
        return [parameters[name] for name in dict.fromkeys(self.names)]


def _skip_quoted(sql: str, i: int, quote: str, backslashes: bool) -> int:
    """The index after the literal that starts with ``quote`` at ``i`` (the end of the text if unclosed)."""
    j = i + 1
    while j < len(sql):
        c = sql[j]
        if backslashes and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < len(sql) and sql[j + 1] == quote:  # '' or "" inside the literal
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _skip_block_comment(sql: str, i: int) -> int:
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return j


def convert(sql: str, positional: bool) -> Converted:
    """``sql`` with SQLite-style placeholders in psycopg's style (``positional``: the parameters are a list)."""
    out: list[str] = []
    numbered: list[str] = []
    names: list[str] = []
    marks = 0
    i = 0
    while i < len(sql):
        c = sql[i]
        start = i
        if c in "eE" and sql.startswith("'", i + 1) and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            i = _skip_quoted(sql, i + 1, "'", backslashes=True)
        elif c in "'\"":
            i = _skip_quoted(sql, i, c, backslashes=False)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "$" and (tag := _DOLLAR_TAG.match(sql, i)) and not (i and (sql[i - 1].isalnum() or
                                                                              sql[i - 1] == "_")):
            end = sql.find(tag.group(0), tag.end())
            i = len(sql) if end < 0 else end + len(tag.group(0))
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            numbered.append("::")
            i += 2
            continue
        elif c == ":" and (name := _NAME.match(sql, i + 1)):
            names.append(name.group(0))
            out.append(f"%({name.group(0)})s")
            numbered.append(f"${list(dict.fromkeys(names)).index(name.group(0)) + 1}")
            i = name.end()
            continue
        elif c == "?" and positional:
            marks += 1
            out.append("%s")
            numbered.append(f"${marks}")
            i += 1
            continue
        elif c == "%":
            out.append("%%")
            numbered.append("%")
            i += 1
            continue
        else:
            # Copy a run of ordinary characters at once.
            i += 1
            while i < len(sql) and sql[i] not in "eE'\"-/$:?%":
                i += 1
        out.append(sql[start:i].replace("%", "%%"))
        numbered.append(sql[start:i])
    return Converted("".join(out), "".join(numbered), tuple(names), marks)
