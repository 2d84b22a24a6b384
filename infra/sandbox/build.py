"""The engine's side of running code: one task attempt's :class:`CodeRequest`, built from the task as written.

The request is built from the node's raw config (never from a config rendered
as a whole), so each kind can decide what is filled in and how:

* ``python``: the code exactly as written (it is Python, not a template) and the
  namespace the docs promise (inputs, variables, tasks, error, loop, the loop item);
* ``shell``: the argument list (split first, then each argument filled in: see
  :mod:`infra.sandbox.command`), ``config.environment`` (a ``null`` value removes a
  name), ``working_dir`` and ``capture_output``;
* ``custom``: the whole config rendered.

Render errors raise the engine's ``ExpressionError``; a malformed config raises
``TaskFailure("InvalidConfig")``, as every task type does.
"""

from __future__ import annotations

from typing import Any

from statemachine.durations import parse_duration
from statemachine.expressions import EvalContext, render
from statemachine.limits import MAX_CODE_TIMEOUT
from statemachine.plan import Node

from ..tasks.base import TaskFailure
from ..tasks.common import INVALID_CONFIG, flag, mapping, text
from .command import command_argv
from .request import CodeRequest

DEFAULT_TIMEOUT = 300.0


def code_request(node: Node, scope, ctx: EvalContext | None, run, custom_modules: tuple[str, ...]) -> CodeRequest:
    """The request for one attempt of the python, shell or custom task ``node`` of ``run``."""
    raw = node.config or {}
    if not isinstance(raw, dict):
        raise TaskFailure(INVALID_CONFIG, f"a {node.type} task's config must be an object")
    # The engine renders with the attempt's recorded context; starting its random sequence
    # afresh gives the same values the engine's own rendering would, on every replay.
    ctx = ctx.fresh() if ctx is not None else None
    common = {"task_id": node.id, "run_id": run.run_id, "custom_modules": tuple(custom_modules)}
    if node.type == "python":
        code = raw.get("code")
        # `requirements` were checked against the deployment's packages when the workflow was validated
        # (statemachine/admission.py); the task then imports from them, and only a task that declares some.
        return CodeRequest(kind="python", config={"code": "" if code is None else str(code),
                                                  "packages": bool(raw.get("requirements"))},
                           timeout=_timeout(raw.get("timeout"), node.timeout),
                           namespace=python_namespace(run, scope), **common)
    if node.type == "shell":
        argv = command_argv(raw.get("command"), scope, ctx)
        environment, unset = _environment(render(raw.get("environment"), scope, ctx))
        rest = render({k: v for k, v in raw.items() if k in ("working_dir", "capture_output", "timeout")}, scope, ctx)
        config = {"command": argv, "working_dir": text(rest, "working_dir"),
                  "capture_output": flag(rest, "capture_output", True), "unset_environment": unset}
        return CodeRequest(kind="shell", config=config, timeout=_timeout(rest.get("timeout"), node.timeout),
                           environment=environment, **common)
    if node.type == "custom":
        config = render(raw, scope, ctx)
        return CodeRequest(kind="custom", config=config, timeout=_timeout(config.get("timeout"), node.timeout),
                           **common)
    raise TaskFailure("UnsupportedTaskType", f"a '{node.type}' task does not run code")


def python_namespace(run, scope) -> dict[str, Any]:
    """What a python task's code sees (language.md): the run's data and every ancestor's view."""
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
    return namespace


def _environment(value: Any) -> tuple[dict[str, str], list[str]]:
    """``config.environment`` as names to set and names to remove (a ``null`` value)."""
    environment: dict[str, str] = {}
    unset: list[str] = []
    for name, item in mapping({"environment": value}, "environment").items():
        name = str(name)
        if not name or "=" in name or "\0" in name:
            raise TaskFailure(INVALID_CONFIG, f"'config.environment': {name!r} is not a variable name")
        if item is None:
            unset.append(name)
            environment.pop(name, None)
        elif isinstance(item, (dict, list)):
            raise TaskFailure(INVALID_CONFIG, f"'config.environment.{name}' must be a string")
        else:
            value_text = text({"v": item}, "v") or ""
            if "\0" in value_text:
                raise TaskFailure(INVALID_CONFIG, f"'config.environment.{name}' cannot contain NUL characters")
            environment[name] = value_text
    return environment, unset


def _timeout(configured: Any, task_timeout: float | None) -> float:
    """The shorter of ``config.timeout`` and the task's ``timeout``; 300 s when neither is set; at most
    MAX_CODE_TIMEOUT, what every target can run."""
    limits = []
    if configured is not None:
        try:
            limits.append(parse_duration(configured))
        except ValueError as exc:
            raise TaskFailure(INVALID_CONFIG, f"'config.timeout': {exc}") from exc
    if task_timeout:
        limits.append(float(task_timeout))
    chosen = min(limits) if limits else DEFAULT_TIMEOUT
    return min(max(chosen, 0.001), MAX_CODE_TIMEOUT)
