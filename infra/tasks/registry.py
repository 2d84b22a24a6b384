"""Which provider runs which task type. Durable types (wait, callback, approval) are the engine's own.

Code-running types (python, shell, custom) never run in the engine: their request is
built from the task as written (:mod:`infra.sandbox.build`) and run by the ``code``
provider, on one machine the sandbox (:func:`infra.sandbox.launch.run_code`).

Every failure leaves here as a :class:`TaskFailure` with a typed error: a
provider's unexpected exception becomes ``TaskProviderError`` rather than
escaping into the engine.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from statemachine.limits import CODE_TASK_TYPES, MAX_WORKER_TASK_TIMEOUT, DeploymentLimits
from statemachine.plan import Node

from ..sandbox.build import code_request
from ..sandbox.launch import run_code
from . import browser, database, files, http_task, llm, messaging, settings
from .base import TaskFailure, TaskResult
from .common import TaskMeta

log = logging.getLogger(__name__)

RUNNERS: dict[str, Callable[[dict[str, Any], TaskMeta], Any]] = {
    "http": http_task.run_http,
    "llm": llm.run_llm,
    "email": messaging.run_email,
    "sms": messaging.run_sms,
    "voice": messaging.run_voice,
    "browser": browser.run_browser,
    "file": files.run_file,
}

# One provider runs code on every target for now: the sandbox on this machine.
for _kind in CODE_TASK_TYPES:
    settings.register(_kind, "subprocess", lambda: run_code, aws_default=True, local_default=True)


def worker_timeout(node_timeout: float | None) -> float:
    """The longest a task that runs in the worker may take: its own timeout, bounded by what the
    worker's Lambda can give it (a type's longer default, e.g. llm's, is cut to this too)."""
    return min(float(node_timeout or MAX_WORKER_TASK_TIMEOUT), MAX_WORKER_TASK_TIMEOUT)


def run_task_type(node: Node, config: dict[str, Any], run, scope, ctx) -> TaskResult:
    if node.type in CODE_TASK_TYPES:  # the engine dispatches these to the task runner; tools call them here
        return run_code_task(node, run, scope, ctx)
    # Every provider takes the shorter of its config's timeout and this one: in the worker, nothing
    # may outlast the time the worker checked it had (infra/engine/budget.py).
    meta = TaskMeta(task_id=node.id, run_id=run.run_id, workflow_id=getattr(run, "workflow_id", ""),
                    timeout=worker_timeout(node.timeout))
    runner = RUNNERS.get(node.type or "")
    if runner is None and node.type != "database":
        raise TaskFailure("UnsupportedTaskType", f"there is no '{node.type}' task type")
    if not isinstance(config, dict):
        raise TaskFailure("InvalidConfig", f"a {node.type} task's config must be an object")
    try:
        if node.type == "database":
            # The query as written (before rendering) tells whether SQL was built from data.
            output = database.run_database(config, meta, (node.config or {}).get("query"))
        else:
            output = runner(config, meta)
    except TaskFailure:
        raise
    except Exception as exc:  # a provider bug or an unforeseen library error: still a typed task failure
        log.exception("%s task %s failed unexpectedly", node.type, node.id)
        raise TaskFailure("TaskProviderError", f"{node.type}: {type(exc).__name__}: {exc}") from exc
    return TaskResult(output=output)


def run_code_task(node: Node, run, scope, ctx) -> TaskResult:
    """A python, shell or custom task: built from the task as written (a shell command is split before
    anything is filled in), then run outside the engine; the reply becomes the result or the failure."""
    limits = DeploymentLimits.from_setting(os.environ.get("LOOPLINE_CUSTOM_MODULES"))
    request = code_request(node, scope, ctx, run, limits.custom_modules)
    runner = settings.create(node.type)
    try:
        reply = runner(request)
    except Exception as exc:  # a bug in the runner, never the task's own failure: still typed
        log.exception("%s task %s could not be run", node.type, node.id)
        raise TaskFailure("TaskProviderError", f"{node.type}: {type(exc).__name__}: {exc}") from exc
    if reply.error is not None:
        raise TaskFailure(reply.error["type"], reply.error.get("message", ""))
    return TaskResult(output=reply.output, names=reply.names, printed=reply.printed)
