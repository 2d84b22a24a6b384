"""Copies of records, as a database hands them out: the caller's to change, nothing shared with what
was stored, except what never changes.

A run's inputs never change after it starts (a migration replaces them whole, by a write), so a run's
copy shares them. A for_each over a run's input list would otherwise copy the whole list on every
read of the run: several times per iteration, so its cost grew with the square of the list.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from .ports import RunRecord, TaskRecord

_ATOMS = frozenset({str, int, float, bool, type(None)})
_SHARED = _ATOMS | {frozenset}
R = TypeVar("R")


def copied(value: Any) -> Any:
    """A deep copy of ``value``: of JSON's dicts, lists and atoms directly (copy.deepcopy spends more
    time on them than the rest of a SQLite write), of anything else with copy.deepcopy."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {key: copied(item) for key, item in value.items()}
    if kind is list:
        return [copied(item) for item in value]
    return copy.deepcopy(value)


def run_copy(run: RunRecord) -> RunRecord:
    """A copy of ``run`` whose every changeable part is the caller's own; its inputs are shared."""
    return _fields_copied(run, shared=("inputs",))


def task_copy(rec: TaskRecord) -> TaskRecord:
    """A copy of a task's record. Field by field, because copy.deepcopy of a whole record took about as
    long as the rest of a for_each iteration's handling."""
    return _fields_copied(rec)


def _fields_copied(record: R, shared: tuple[str, ...] = ()) -> R:
    """``record`` copied field by field: atoms, frozensets and the fields named ``shared`` as they are
    (they cannot change), every other field by :func:`copied` (a field added later included)."""
    new = copy.copy(record)
    fields = new.__dict__
    for name, value in fields.items():
        if type(value) not in _SHARED and name not in shared:
            fields[name] = copied(value)
    return new


def record_copy(value: R) -> R:
    """A run's copy by :func:`run_copy`, a task's by :func:`task_copy`, a dict of them item by item,
    anything else deeply."""
    if value is None:
        return value
    if isinstance(value, TaskRecord):
        return task_copy(value)  # type: ignore[return-value]
    if isinstance(value, RunRecord):
        return run_copy(value)  # type: ignore[return-value]
    if isinstance(value, dict) and type(value) is dict:
        return {key: record_copy(item) for key, item in value.items()}  # type: ignore[return-value]
    return copy.deepcopy(value)
