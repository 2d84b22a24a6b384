"""Which provider runs which task type. Durable types (wait, callback, approval) are the engine's own."""

from __future__ import annotations

from typing import Any

from statemachine.plan import Node

from .base import TaskFailure, TaskResult
from .python_task import run_python


def run_task_type(node: Node, config: dict[str, Any], run, scope, ctx) -> TaskResult:
    if node.type == "python":
        namespace = {
            **{k: v for k, v in run.variables.items() if k.isidentifier()},
            "inputs": run.inputs,
            "variables": run.variables,
            "tasks": scope.roots["tasks"],
            # what a role or a loop adds to the scope: a catch handler's `error`, a loop's `loop`
            **{name: scope.roots[name] for name in ("error", "loop") if name in scope.roots},
        }
        loop = scope.roots.get("loop")
        if loop and loop.get("iterator"):
            namespace[loop["iterator"]] = loop["item"]  # the loop iterator by its bare name (dsl.md)
        return run_python(node.id, str(config.get("code", "")), namespace, node.timeout)
    raise TaskFailure(
        "UnsupportedTaskType",
        f"the '{node.type}' task type is not available in this release (see docs/language.md)",
    )
