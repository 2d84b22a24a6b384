"""What a workflow built in Python can be told before any YAML is written: a dependency, a listed id, a
handler or a compensation that names nothing, and a dependency cycle, each at the author's line.

Only the edges written explicitly are checked here (``depends_on``, and a block's list: a listed task
waits for its block); ``${tasks.<id>...}`` references and everything else are the compiler's, which
reports them as FILE:LINE:COL on the emitted YAML. Pure: reads the document's data, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from statemachine.diagnostics import did_you_mean

from .builder_values import BuilderError

_BLOCKS = (("control_flow", "conditions", "condition"), ("control_flow", "loops", "loop"),
           ("control_flow", "parallel", "parallel block"), (None, "sub_workflows", "sub-workflow"))


def _lists(block: dict[str, Any]) -> Iterator[Any]:
    """Every entry a block lists: ids (str) and inline tasks (dict)."""
    for key in ("then", "else", "tasks"):
        yield from block.get(key) or []
    for branch in block.get("branches") or []:
        yield from branch.get("tasks") or []


def _blocks(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for parent, section, what in _BLOCKS:
        holder = (doc.get(parent) or {}) if parent else doc
        for block in holder.get(section) or []:
            yield what, block


def items(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, what, fields) of every task (inline ones too) and block of a workflow document."""
    for task in doc.get("tasks") or []:
        yield task["id"], "task", task
    for what, block in _blocks(doc):
        yield block["id"], what, block
        for entry in _lists(block):
            if isinstance(entry, dict):
                yield entry["id"], "task", entry


def check(doc: dict[str, Any], sites: dict[str, tuple[str, str]], ref_sites: dict[tuple[str, str], str]) -> None:
    known = list(sites)

    def missing(site: str, what: str, name: str) -> BuilderError:
        close = did_you_mean(name, known)
        return BuilderError(f"{site}: {what} '{name}', which is no task or block of workflow "
                            f"'{doc['metadata']['id']}'" + (f" ({close})" if close else ""))

    waits: dict[str, list[str]] = {item_id: [] for item_id in known}
    for item_id, what, fields in items(doc):
        site = sites[item_id][1]
        for dep in fields.get("depends_on") or []:
            if dep not in sites:
                raise missing(site, f"{what} '{item_id}' depends on", dep)
            waits[item_id].append(dep)
        compensation = fields.get("compensation") or {}
        if compensation.get("task_id") and compensation["task_id"] not in sites:
            raise missing(site, f"{what} '{item_id}' is compensated by", compensation["task_id"])
    for what, block in _blocks(doc):
        for entry in _lists(block):
            listed = entry["id"] if isinstance(entry, dict) else entry
            if listed not in sites:
                raise missing(sites[block["id"]][1], f"{what} '{block['id']}' lists", listed)
            waits[listed].append(block["id"])
    handling = doc.get("error_handling") or {}
    named = [("catch handler", clause["handler"]) for clause in handling.get("catch") or []]
    named += [("finally task", task_id) for task_id in handling.get("finally") or []]
    for role, task_id in named:
        if task_id not in sites:
            raise missing(ref_sites.get((role, task_id), "workflow"), f"the {role} is", task_id)
    _check_cycles(waits, sites)


def _check_cycles(waits: dict[str, list[str]], sites: dict[str, tuple[str, str]]) -> None:
    done: set[str] = set()
    order = {item_id: n for n, item_id in enumerate(sites)}
    for start in waits:
        path: list[str] = []
        on_path: dict[str, int] = {}
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(waits[start]))]
        path.append(start)
        on_path[start] = 0
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                done.add(path.pop())
                on_path.pop(node)
            elif dep in on_path:  # node waits for dep, which (through the path) waits for node
                cycle = path[on_path[dep]:][::-1]  # running order: each waits for the one before it
                last = max(cycle, key=order.__getitem__)  # the call that closed the cycle, named first
                at = cycle.index(last)
                running = [*cycle[at:], *cycle[:at], last]
                what, site = sites[last]
                raise BuilderError(f"{site}: {what} '{last}' closes a dependency cycle: {' -> '.join(running)}")
            elif dep not in done:
                on_path[dep] = len(path)
                path.append(dep)
                stack.append((dep, iter(waits[dep])))
