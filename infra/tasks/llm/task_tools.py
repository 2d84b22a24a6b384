"""Running a tool task (``tools: [{task: <id>}]``, statemachine/tool_tasks.py) when the model calls it.

The task is found in the run's plan (only a task whose role is ``tool``), and
run through its own type's runtime exactly as the engine would run it, with
the model's arguments in its scope as ``args``: a provider type's config is
rendered with them, a python task sees ``args`` in its namespace, a shell
command's arguments and a custom task's parameters are filled in from them. A
code type runs in the sandbox (the code provider), as a function tool does.
Its timeout is the shorter of its own and what is left of the llm task's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statemachine.expressions import ExpressionError, Scope, render
from statemachine.limits import CODE_TASK_TYPES

from ..base import TaskFailure, TaskResult
from ..common import TaskMeta
from ..runtime import TaskCall

TaskTool = Callable[[str, dict[str, Any], float], Any]


def task_tools(call: TaskCall) -> TaskTool:
    """Runs the tool task ``task_id`` of ``call``'s run with ``args``, within ``timeout`` seconds; its output."""

    def run_task(task_id: str, args: dict[str, Any], timeout: float) -> Any:
        nodes = getattr(call.plan, "nodes", {}) or {}
        node = nodes.get(task_id)
        if node is None or node.role != "tool":
            raise TaskFailure("UnknownTool", f"task '{task_id}' is not a tool task of this run's workflow")
        runtime = call.providers.runtimes.get(node.type or "")
        if runtime is None:
            raise TaskFailure("UnsupportedTaskType", f"there is no '{node.type}' task type")
        roots = dict(call.scope.roots) if call.scope is not None else {}
        scope = Scope(roots={**roots, "args": args}, bare=call.scope.bare if call.scope is not None else ())
        limit = min(timeout, node.timeout) if node.timeout else timeout
        node = node.model_copy(update={"timeout": limit})
        try:
            # code types build their request from the task as written (infra/sandbox/build.py)
            config = node.config if node.type in CODE_TASK_TYPES else render(node.config, scope, call.ctx)
        except ExpressionError as exc:
            raise TaskFailure("ExpressionError", str(exc)) from exc
        meta = TaskMeta(task_id=node.id, run_id=call.meta.run_id, workflow_id=call.meta.workflow_id,
                        timeout=limit, at=call.meta.at)
        try:
            result = runtime.run(TaskCall(node=node, config=config, meta=meta, settings=call.settings,
                                          providers=call.providers, run=call.run, scope=scope, ctx=call.ctx,
                                          plan=call.plan))
        except ExpressionError as exc:
            raise TaskFailure("ExpressionError", str(exc)) from exc
        return result.output if isinstance(result, TaskResult) else result

    return run_task


def describe(call: TaskCall) -> Callable[[str], str | None]:
    """A tool task's description when its tool gives none: the task's ``description``, else its ``name``."""

    def description(task_id: str) -> str | None:
        node = (getattr(call.plan, "nodes", {}) or {}).get(task_id)
        return (node.description or node.name) if node is not None else None

    return description
