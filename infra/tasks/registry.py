"""Which provider runs which task type. Durable types (wait, callback, approval) are the engine's own.

Every failure leaves here as a :class:`TaskFailure` with a typed error: a
provider's unexpected exception becomes ``TaskProviderError`` rather than
escaping into the engine.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from statemachine.limits import MAX_WORKER_TASK_TIMEOUT
from statemachine.plan import Node

from . import browser, custom_task, database, files, http_task, llm, messaging, shell_task
from .base import TaskFailure, TaskResult
from .common import TaskMeta
from .python_task import run_python

log = logging.getLogger(__name__)

RUNNERS: dict[str, Callable[[dict[str, Any], TaskMeta], Any]] = {
    "http": http_task.run_http,
    "shell": shell_task.run_shell,
    "llm": llm.run_llm,
    "email": messaging.run_email,
    "sms": messaging.run_sms,
    "voice": messaging.run_voice,
    "browser": browser.run_browser,
    "file": files.run_file,
    "custom": custom_task.run_custom,
}


def worker_timeout(node_timeout: float | None) -> float:
    """The longest a task that runs in the worker may take: its own timeout, bounded by what the
    worker's Lambda can give it (a type's longer default, e.g. llm's, is cut to this too)."""
    return min(float(node_timeout or MAX_WORKER_TASK_TIMEOUT), MAX_WORKER_TASK_TIMEOUT)


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
    # Every provider takes the shorter of its config's timeout and this one: in the worker, nothing
    # may outlast the time the worker checked it had (infra/engine/budget.py).
    meta = TaskMeta(task_id=node.id, run_id=run.run_id, workflow_id=getattr(run, "workflow_id", ""),
                    timeout=worker_timeout(node.timeout) if node.type not in ("shell", "custom") else node.timeout)
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
