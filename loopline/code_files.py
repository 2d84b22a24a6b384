"""A python task's ``code`` written as a file path (seed 003: ``code: string | file_path``), read by the CLI.

``code: steps/clean.py`` names a file next to the workflow file. The CLI reads it and writes its contents in
place of the path, as one double-quoted YAML string on the same line, so every other line keeps its number
and diagnostics still point into the file as written. What is read is confined to the workflow file's
directory (no absolute path, no ``..``, no symlink out of it), a regular file of at most 1 MB in UTF-8.

The engine never reads files a workflow names: a workflow sent as text (``POST /runs``, ``POST /workflows``)
must carry its code, and validation says so for a ``code`` that is a path (statemachine/task_configs.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachine.graph_form import is_graph
from statemachine.task_configs import code_file
from statemachine.yaml_source import load_yaml

MAX_CODE_FILE = 1024 * 1024


class CodeFileError(Exception):
    """A code file that cannot be read: ``file:line:col: message``, as a diagnostic."""


@dataclass(frozen=True)
class Inlined:
    """The text with code files inlined, and how far each inlined line's later columns moved."""

    text: str
    shifts: tuple[tuple[int, int, int], ...] = ()  # (line, first column after the edit, columns added)

    def position(self, line: int, col: int) -> tuple[int, int]:
        """Where ``line``:``col`` of :attr:`text` was written in the file."""
        moved = sum(delta for at_line, after, delta in self.shifts if at_line == line and col >= after)
        return line, col - moved


def inline_code_files(text: str, workflow_path: str) -> Inlined:
    """``text`` with each python task's (or graph node's) ``code`` that names a file replaced by that
    file's contents."""
    data, smap, diagnostics = load_yaml(text, workflow_path)
    if diagnostics or not isinstance(data, dict):
        return Inlined(text)  # the compiler reports what is wrong with the file itself
    edits = []
    for path, task in _tasks(data.get("workflow"), ("workflow",)) + _graph_nodes(data):
        config = task.get("config")
        name = code_file(config.get("code")) if task.get("type") == "python" and isinstance(config, dict) else None
        if name is None:
            continue
        loc = smap.value(path + ("config", "code"))
        if loc is None or loc.style in ("|", ">"):
            continue  # a block scalar is source, whatever it looks like
        try:
            source = _read(Path(workflow_path).resolve().parent, name.strip())
        except CodeFileError as error:
            raise CodeFileError(f"{workflow_path}:{loc.line}:{loc.col}: code {name!r}: {error}") from None
        edits.append((loc.start, loc.end, json.dumps(source), loc.line, loc.col))
    shifts = []
    for start, end, replacement, line, col in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
        shifts.append((line, col + len(replacement), len(replacement) - (end - start)))
    return Inlined(text, tuple(shifts))


def _read(base: Path, name: str) -> str:
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise CodeFileError("must be a path inside the workflow file's directory")
    target = (base / name).resolve()
    if base != target and base not in target.parents:
        raise CodeFileError("leads out of the workflow file's directory (a symlink)")
    if not target.is_file():
        raise CodeFileError("no such file next to the workflow file")
    if target.stat().st_size > MAX_CODE_FILE:
        raise CodeFileError(f"is larger than {MAX_CODE_FILE:,} bytes")
    try:
        return target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CodeFileError("is not UTF-8 text") from None
    except OSError as error:
        raise CodeFileError(f"cannot be read: {error.strerror}") from None


def _tasks(workflow: Any, base: tuple) -> list[tuple[tuple, dict]]:
    """Every task mapping of the file with its path: top-level, in conditions, loops and parallel branches."""
    found: list[tuple[tuple, dict]] = []
    if not isinstance(workflow, dict):
        return found

    def listed(items: Any, path: tuple) -> None:
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                found.append((path + (i,), item))

    listed(workflow.get("tasks"), base + ("tasks",))
    flow = workflow.get("control_flow") if isinstance(workflow.get("control_flow"), dict) else {}
    cf = base + ("control_flow",)
    for i, cond in enumerate(flow.get("conditions") or []):
        for label in ("then", "else"):
            listed(cond.get(label) if isinstance(cond, dict) else None, cf + ("conditions", i, label))
    for i, loop in enumerate(flow.get("loops") or []):
        listed(loop.get("tasks") if isinstance(loop, dict) else None, cf + ("loops", i, "tasks"))
    for i, block in enumerate(flow.get("parallel") or []):
        branches = block.get("branches") if isinstance(block, dict) else None
        for j, branch in enumerate(branches if isinstance(branches, list) else []):
            listed(branch.get("tasks") if isinstance(branch, dict) else None,
                   cf + ("parallel", i, "branches", j, "tasks"))
    return found


def _graph_nodes(data: dict) -> list[tuple[tuple, dict]]:
    """The graph form's nodes (docs/graph-form.md), under ``graph:`` or at the top level: a python node
    is a task like any other."""
    if not is_graph(data):
        return []
    root: tuple = ("graph",) if "graph" in data else ()
    graph = data.get("graph") if root else data
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    return [(root + ("nodes", i), node) for i, node in enumerate(nodes if isinstance(nodes, list) else [])
            if isinstance(node, dict)]
