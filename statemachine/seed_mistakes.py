"""Mistakes a workflow can make that its shape does not show, found when it is validated.

Both are in seed 003's own examples, and both would otherwise fail only when the run gets there:

- a ``database`` task's query binds ``:name`` that ``config.parameters`` does not give (the data pipeline's
  ``log_invalid`` binds ``:errors`` and passes only ``data``): SQLite would raise "You did not supply a value
  for binding parameter :errors" mid-run;
- a task's expression reads a field of ``approval`` that an approval's result does not have (the content
  review's ``${approval.response}``: the result is ``{approved, decision, approver, comments, data,
  decided_at, votes}``), which would fail the task with a missing-reference error after someone decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from statemachine.expressions import member_references

APPROVAL_FIELDS = ("approved", "decision", "approver", "comments", "data", "decided_at", "votes")

# What a named parameter is, and what to skip while looking for one: quoted strings and identifiers,
# comments, and PostgreSQL's `::type` casts.
_SQL = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|::|(?<![\w:]):([A-Za-z_]\w*)""", re.S)


def query_placeholders(query: str) -> Iterator[tuple[str, int]]:
    """Each ``:name`` the query binds, with its offset."""
    for match in _SQL.finditer(query):
        if match.group(1):
            yield match.group(1), match.start()


def unbound_parameters(config: Any) -> list[tuple[int, str]]:
    """``(offset in the query, message)`` for each ``:name`` of a literal query that literal
    ``parameters`` do not give. A computed query or parameters (``${...}``) is checked when it runs."""
    if not isinstance(config, dict):
        return []
    query, parameters = config.get("query"), config.get("parameters")
    if not isinstance(query, str) or "${" in query:
        return []
    if parameters is not None and not isinstance(parameters, dict):
        return []  # positional parameters (a list) or computed ones
    given = set(parameters or {})
    found, seen = [], set()
    for name, offset in query_placeholders(query):
        if name not in given and name not in seen:
            seen.add(name)
            have = ", ".join(sorted(given)) or "none"
            found.append((offset, f"the query binds :{name}, which config.parameters does not give "
                                  f"(it gives: {have})"))
    return found


def unknown_approval_fields(text: str) -> list[str]:
    """Fields of ``approval`` an expression reads that an approval's result does not have."""
    return sorted(member_references(text, "approval") - set(APPROVAL_FIELDS))
