"""Tasks that run only as an ``llm`` task's tools (``tools: [{task: <id>}]``): a role, like a catch handler.

A tool task never runs in the flow: it runs when the model calls it, inside the
llm task's attempt, with the model's arguments as ``args`` (``${args.city}``; a
python task's ``args``). So the compiler:

- gives it the role ``tool`` (nothing in the flow may depend on it, and it has
  no other role: statemachine/compiler.py's role checks);
- refuses what cannot apply to a call: a type that waits (wait, callback,
  approval) or is itself an llm task, a task inside a block, and the fields that
  schedule or gate a task of the flow (:data:`NOT_FOR_TOOLS`);
- makes every llm task that offers it wait for what it reads or names in
  ``depends_on`` (:func:`tool_dependencies`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Path = tuple[Any, ...]
# What schedules, gates or follows a task in the flow: meaningless for a call the model makes.
NOT_FOR_TOOLS = ("when", "skip_if", "trigger_rule", "retry", "requires_approval", "compensation",
                 "outputs")
REFUSED_TYPES = ("wait", "callback", "approval", "llm")


def tool_references(entries: Iterable[Any]) -> Iterator[tuple[Any, Path, Any]]:
    """``(llm entry, path of the reference, task id)`` of every ``tools[i].task`` written in an llm task."""
    for entry in entries:
        if entry.kind != "task" or entry.raw.get("type") != "llm":
            continue
        config = entry.raw.get("config")
        tools = config.get("tools") if isinstance(config, dict) else None
        for i, tool in enumerate(tools if isinstance(tools, list) else ()):
            if isinstance(tool, dict) and "task" in tool:
                yield entry, entry.path + ("config", "tools", i, "task"), tool["task"]


def tool_task_ids(entries: Iterable[Any]) -> set[str]:
    return {name for _, _, name in tool_references(entries) if isinstance(name, str)}


def tool_problems(entries: list[Any], by_id: dict[str, Any]) -> list[tuple[Path, str]]:
    """``(path, message)`` for each tool task that cannot run as one. (An unknown id, a block or a second
    role are the compiler's role checks.)"""
    found: list[tuple[Path, str]] = []
    checked: set[str] = set()
    for llm, path, name in tool_references(entries):
        target = by_id.get(name) if isinstance(name, str) else None
        if not isinstance(name, str):
            found.append((path, f"tool of {llm.label}: 'task' must be a task id"))
        if target is None or target.kind != "task":
            continue
        if target.id == llm.id:
            found.append((path, f"{llm.label} cannot be its own tool"))
            continue
        if name in checked:
            continue
        checked.add(name)
        if target.raw.get("type") in REFUSED_TYPES:
            found.append((target.path + ("type",), f"{target.label} is a tool of {llm.label}, which calls it and "
                                                    f"waits for its result: a {target.raw['type']} task cannot be one"))
        if target.block is not None:
            found.append((target.path + ("id",), f"{target.label} is a tool of {llm.label}: a tool task must be "
                                                  "listed in workflow.tasks, not inside a block"))
        for key in NOT_FOR_TOOLS:
            if target.raw.get(key) is not None:
                found.append((target.path + (key,), f"{target.label} runs only as a tool of {llm.label}, when the "
                                                     f"model calls it: '{key}' does not apply"))
    return found


def tool_dependencies(entries: Iterable[Any], by_id: dict[str, Any]) -> Iterator[tuple[Any, str, tuple]]:
    """``(llm entry, dependency, where)``: an llm task waits for what its tool tasks read."""
    for llm, _path, name in tool_references(entries):
        target = by_id.get(name) if isinstance(name, str) else None
        if target is None or target.kind != "task" or target.id == llm.id:
            continue
        for dep, where in target.deps.items():
            if dep != llm.id:
                yield llm, dep, where
