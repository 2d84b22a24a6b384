"""What a deployment will run: a workflow checked against :class:`DeploymentLimits` (issue #9).

A workflow that validates must run on every target, so what a target cannot do
or a deployment does not allow is refused here, with a position, rather than
failing (or never finishing) at run time:

- a ``custom`` task's handler module must be allowed by the deployment (none is
  by default); a handler computed with ``${...}`` cannot be checked, so it is
  refused too;
- a task ``timeout`` or ``config.timeout`` may not exceed what its type can run:
  python, shell and custom run in the task-runner function (``MAX_CODE_TIMEOUT``),
  the other provider types inside the worker (``MAX_WORKER_TASK_TIMEOUT``). A
  computed ``config.timeout`` of such a type cannot be checked and is refused.
  Durable waits (``wait``, ``callback``, ``approval``, ``requires_approval``,
  escalation), sub-workflows and the workflow's ``config.timeout`` wait on
  timers, not in a function, and have no such limit. Retries and loops change
  nothing: every attempt and every iteration is its own message with its own
  timeout;
- a number must be finite: ``.inf``, ``.nan`` or ``1e999`` written in the file
  is not JSON, and no stored value may hold one (the compiler finds them with
  ``statemachine.json_values.non_finite_numbers``).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from statemachine.durations import parse_duration
from statemachine.limits import (
    MAX_CODE_TIMEOUT,
    MAX_WORKER_TASK_TIMEOUT,
    DeploymentLimits,
    module_allowed,
)
from statemachine.plan import Plan
from statemachine.requirements import requirement_problems
from statemachine.task_types import TASK_TYPES, TaskCatalogue

Path = tuple[Any, ...]
_HANDLER = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_]\w*$")
_WHY = {"code": "they run in the task-runner function, whose Lambda timeout is 15 min",
        "worker": "they run inside the worker, whose Lambda timeout is 30 s"}


def timeout_limit(task_type: Any, types: TaskCatalogue = TASK_TYPES) -> tuple[float, str] | None:
    """The longest one attempt of ``task_type`` may run, with where it runs; None: no limit.
    Durable waits wait on a timer or a link: no function runs meanwhile."""
    spec = types.get(task_type)
    if spec is None or spec.durable:  # an unknown type is the shape's error
        return None
    return (MAX_CODE_TIMEOUT, "code") if spec.runs_code else (MAX_WORKER_TASK_TIMEOUT, "worker")


def task_problems(task_id: Any, task_type: Any, config: Any, timeout: Any, limits: DeploymentLimits,
                  types: TaskCatalogue = TASK_TYPES) -> list[tuple[Path, str]]:
    """``(path relative to the task, message)`` for what this deployment will not run."""
    label = f"task '{task_id}'" if isinstance(task_id, str) else "task"
    config = config if isinstance(config, dict) else {}
    found: list[tuple[Path, str]] = []
    handler = config.get("handler")
    if task_type == "custom" and isinstance(handler, str):
        match = _HANDLER.match(handler)
        allowed = ", ".join(limits.custom_modules) or "none"
        if "${" in handler:
            found.append((("config", "handler"), f"{label}: custom handler {handler!r} is computed at run time, so "
                          "its module cannot be checked against the modules this deployment allows: write "
                          "'module:function'"))
        elif match and not module_allowed(match.group(1), limits.custom_modules):
            found.append((("config", "handler"), f"{label}: custom handler module '{match.group(1)}' is not "
                          f"allowed by this deployment (allowed: {allowed}; set LOOPLINE_CUSTOM_MODULES, the "
                          "template's CustomModules parameter)"))
    if task_type == "python":
        for index, message in requirement_problems(config.get("requirements"), limits.python_packages):
            found.append((("config", "requirements") + (() if index is None else (index,)), f"{label}: {message}"))
    limit = timeout_limit(task_type, types)
    if limit is None:
        return found
    seconds, where = limit
    for path, value in ((("timeout",), timeout), (("config", "timeout"), config.get("timeout"))):
        name = ".".join(path)
        if isinstance(value, str) and "${" in value:
            found.append((path, f"{label}: {name} is computed at run time, so it cannot be checked against the "
                                f"{seconds:g} s that {task_type} tasks may run: write a duration"))
            continue
        try:
            given = parse_duration(value) if value is not None else None
        except ValueError as exc:
            if path[0] == "config":  # a task's own timeout is checked with the file's shape
                found.append((path, f"{label}: {name}: {exc}"))
            continue
        if given is not None and given > seconds:
            shown = value if isinstance(value, str) else f"{given:g}s"
            found.append((path, f"{label}: {name} {shown} is over the {seconds:g} s that {task_type} tasks may "
                                f"run ({_WHY[where]})"))
    return found


def deployment_problems(tasks: Iterable[tuple[Any, Path, dict]], limits: DeploymentLimits,
                        types: TaskCatalogue = TASK_TYPES) -> list[tuple[Path, str]]:
    """Every task of a file (id, path, raw mapping) checked against ``limits``."""
    return [(path + relative, message)
            for task_id, path, raw in tasks
            for relative, message in task_problems(task_id, raw.get("type"), raw.get("config"), raw.get("timeout"),
                                                   limits, types)]


def plan_problems(plan: Plan, limits: DeploymentLimits) -> list[str]:
    """A compiled plan (from the registry) against ``limits``, which may have changed since it was registered."""
    where = f"workflow '{plan.workflow_id}@{plan.version}'"
    return [f"{where}, line {node.line}: {message}"
            for node in plan.nodes.values() if node.kind == "task"
            for _, message in task_problems(node.id, node.type, node.config, node.timeout, limits)]
