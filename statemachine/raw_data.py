"""Reading a workflow file's raw data before (or despite) its shape being valid.

The compiler's checks run on the plain data the loader built even when the
shape is wrong elsewhere, so they read it defensively: a value that is not the
mapping or list expected reads as empty.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Iterator

Path = tuple[Any, ...]


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def strings_in(value: Any, path: Path, skip: Collection[Path] = ()) -> Iterator[tuple[Path, str]]:
    """Every string in ``value`` with its path, leaving out what is at the paths in ``skip``."""
    if path in skip:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, path + (key,), skip)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings_in(item, path + (i,), skip)


TASK_REF = re.compile(r"(?<![A-Za-z0-9_.])tasks\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]*)['\"])")


def ref_offset(text: str, task_id: str) -> int:
    """Where ``text`` names ``task_id`` (for the column of an unknown-task message)."""
    for match in TASK_REF.finditer(text):
        if task_id in match.groups():
            return match.start()
    return 0
