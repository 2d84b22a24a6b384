"""The code-running types (python, shell, custom): the workflow's own code, never run in the engine.

The engine dispatches them to the task runner (infra/engine/code_tasks.py); tools
and tests call them here. The request is built from the task as written (a shell
command is split before anything is filled in, :mod:`infra.sandbox.build`) and
run by the ``code`` provider: on every target for now the sandbox on this
machine (:func:`infra.sandbox.launch.run_code`).
"""

from __future__ import annotations

import functools
import logging

from statemachine.limits import DeploymentLimits

from ...sandbox.build import code_request
from ...sandbox.launch import run_code
from ..base import TaskFailure, TaskResult
from ..runtime import Provider, TaskCall, TaskRuntime

log = logging.getLogger(__name__)


def run(call: TaskCall) -> TaskResult:
    node = call.node
    limits = DeploymentLimits.from_setting(call.settings.custom_modules)
    request = code_request(node, call.scope, call.ctx, call.run, limits.custom_modules)
    runner = call.provider()
    try:
        reply = runner(request)
    except Exception as exc:  # a bug in the runner, never the task's own failure: still typed
        log.exception("%s task %s could not be run", node.type, node.id)
        raise TaskFailure("TaskProviderError", f"{node.type}: {type(exc).__name__}: {exc}") from exc
    if reply.error is not None:
        raise TaskFailure(reply.error["type"], reply.error.get("message", ""))
    return TaskResult(output=reply.output, names=reply.names, printed=reply.printed)


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("subprocess", lambda settings: functools.partial(run_code, settings=settings.sandbox),
             default_on=("aws", "local")),))
