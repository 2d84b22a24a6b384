"""One id-carrying thing of a workflow file (a task, an inline task, a block) as the compiler collects
it: where it is, its raw data, the block that lists it and the dependencies found so far. The checks
(statemachine/compiler.py) read it; the plan builder (statemachine/plan_builder.py) turns it into a Node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path = tuple[Any, ...]
_KIND_LABEL = {"task": "task", "condition": "condition", "loop": "loop",
               "parallel": "parallel block", "sub_workflow": "sub-workflow"}


@dataclass
class Entry:
    """One id-carrying thing of the file (task, inline task, block)."""

    id: str | None
    kind: str
    path: Path
    raw: dict
    block: tuple[str, str] | None = None  # (block id, "then"/"else"/"tasks"/branch name)
    deps: dict[str, tuple] = field(default_factory=dict)  # dep id -> (path, text, offset)

    @property
    def label(self) -> str:
        return f"{_KIND_LABEL[self.kind]} '{self.id}'"
