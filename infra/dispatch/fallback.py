"""TEMPORARY: ``code_request`` and ``run_code`` until infra/sandbox/build.py and launch.py land.

The sandbox's own versions build the request from the node's raw config and run it in a
supervised child process; these stand-ins build the same :class:`CodeRequest` and run it with
today's providers (run_python, run_shell, run_custom), so the dispatch path can be exercised
end to end meanwhile. Delete this module once the sandbox's modules are merged.
"""

from __future__ import annotations

from typing import Any

from statemachine.expressions import EvalContext, render
from statemachine.limits import MAX_CODE_TIMEOUT
from statemachine.plan import Node

from ..sandbox.request import CodeReply, CodeRequest
from ..tasks import common
from ..tasks.base import TaskFailure
from ..tasks.common import TaskMeta

_DEFAULT_TIMEOUT = 300.0


def code_request(node: Node, scope, ctx: EvalContext, run, custom_modules: tuple[str, ...] = ()) -> CodeRequest:
    if node.type == "python":
        namespace: dict[str, Any] = {
            **{k: v for k, v in run.variables.items() if k.isidentifier()},
            "inputs": run.inputs, "variables": run.variables, "tasks": scope.roots["tasks"],
            **{name: scope.roots[name] for name in ("error", "loop") if name in scope.roots},
        }
        loop = scope.roots.get("loop")
        if loop and loop.get("iterator"):
            namespace[loop["iterator"]] = loop["item"]
        return CodeRequest(kind="python", task_id=node.id, run_id=run.run_id,
                           config={"code": str(node.config.get("code", ""))},
                           timeout=float(node.timeout or _DEFAULT_TIMEOUT), namespace=namespace)
    config = render(node.config, scope, ctx)
    if not isinstance(config, dict):
        raise TaskFailure("InvalidConfig", f"a {node.type} task's config must be an object")
    meta = TaskMeta(task_id=node.id, run_id=run.run_id, timeout=node.timeout)
    default = _DEFAULT_TIMEOUT if node.type == "shell" else MAX_CODE_TIMEOUT
    return CodeRequest(kind=node.type, task_id=node.id, run_id=run.run_id, config=config,
                       timeout=common.timeout(config, meta, default), custom_modules=tuple(custom_modules))


def run_code(request: CodeRequest) -> CodeReply:
    from ..tasks.custom_task import run_custom
    from ..tasks.python_task import run_python
    from ..tasks.shell_task import run_shell

    try:
        if request.kind == "python":
            result = run_python(request.task_id, str(request.config.get("code", "")), request.namespace,
                                request.timeout)
            return CodeReply(output=result.output, names=result.names)
        meta = TaskMeta(task_id=request.task_id, run_id=request.run_id, timeout=request.timeout)
        if request.kind == "shell":
            return CodeReply(output=run_shell(request.config, meta))
        return CodeReply(output=run_custom(request.config, meta))
    except TaskFailure as failure:
        return CodeReply(error=failure.as_error())
