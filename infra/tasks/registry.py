"""Every task type the engine can run, with the deployment's settings: :class:`TaskTypes`.

The language side of each type is its entry in statemachine/task_types.py; the
runtime side is ``RUNTIME`` in ``infra/tasks/types/<name>.py`` (``types/code.py``
for the code-running types), found by the type's name. Durable types (wait,
callback, approval) are the engine's own and have none.

The engine holds one ``TaskTypes``, built by the wiring from the environment
when the process starts (:meth:`TaskTypes.from_env`), and calls :meth:`TaskTypes.run`.

Every failure leaves here as a :class:`TaskFailure` with a typed error: a
provider's unexpected exception becomes ``TaskProviderError`` rather than
escaping into the engine.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from statemachine.limits import MAX_WORKER_TASK_TIMEOUT
from statemachine.plan import Node
from statemachine.task_types import TASK_TYPES, TaskCatalogue, TaskTypeSpec

from .base import TaskFailure, TaskResult
from .common import TaskMeta
from .runtime import Provider, ProviderChoice, TaskCall, TaskRuntime
from .settings import TaskSettings

log = logging.getLogger(__name__)


def worker_timeout(node_timeout: float | None) -> float:
    """The longest a task that runs in the worker may take: its own timeout, bounded by what the
    worker's Lambda can give it (a type's longer default, e.g. llm's, is cut to this too)."""
    return min(float(node_timeout or MAX_WORKER_TASK_TIMEOUT), MAX_WORKER_TASK_TIMEOUT)


def builtin_runtime(spec: TaskTypeSpec) -> TaskRuntime | None:
    """The runtime of a type of statemachine/task_types.py: the module named after it."""
    if spec.durable:
        return None
    module = importlib.import_module(f"{__package__}.types.{'code' if spec.runs_code else spec.name}")
    return module.RUNTIME


class TaskTypes:
    """The task types of this deployment: what the compiler checks (``catalogue``) and how each runs."""

    def __init__(self, settings: TaskSettings, catalogue: TaskCatalogue = TASK_TYPES,
                 runtimes: Mapping[str, TaskRuntime] | None = None):
        self.settings = settings
        self.catalogue = catalogue
        if runtimes is None:
            found = {spec.name: builtin_runtime(spec) for spec in catalogue}
            runtimes = {name: runtime for name, runtime in found.items() if runtime is not None}
        self.providers = ProviderChoice(dict(runtimes))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TaskTypes:
        """The built-in types with the settings of a process environment (the wiring passes ``os.environ``)."""
        return cls(TaskSettings.from_env(env))

    def with_type(self, spec: TaskTypeSpec, runtime: TaskRuntime) -> TaskTypes:
        """These types and one more (a deployment's own, or a test's); its name must be new."""
        return TaskTypes(self.settings, self.catalogue.with_types(spec),
                         {**self.providers.runtimes, spec.name: runtime})

    def with_provider(self, kind: str, provider: Provider) -> TaskTypes:
        """These types with one more provider for ``kind`` (e.g. a Twilio voice provider), chosen by name
        in LOOPLINE_PROVIDERS like the built-in ones."""
        return TaskTypes(self.settings, self.catalogue, self.providers.with_provider(kind, provider).runtimes)

    def provider_name(self, kind: str) -> str:
        return self.providers.name(kind, self.settings)

    def run(self, node: Node, config: dict[str, Any], run, scope, ctx, at: datetime | None = None,
            plan=None) -> TaskResult:
        """Run one attempt of ``node`` with its rendered ``config`` (the engine's call for a task that is
        not a durable wait); ``at``: the engine clock's time now; ``plan``: the run's."""
        # Every provider takes the shorter of its config's timeout and this one: in the worker, nothing
        # may outlast the time the worker checked it had (infra/engine/budget.py).
        meta = TaskMeta(task_id=node.id, run_id=run.run_id, workflow_id=getattr(run, "workflow_id", ""),
                        timeout=worker_timeout(node.timeout), at=at)
        try:
            output = self._call(node, config, meta, run, scope, ctx, plan)
        except TaskFailure:
            raise
        except Exception as exc:  # a provider bug or an unforeseen library error: still a typed task failure
            log.exception("%s task %s failed unexpectedly", node.type, node.id)
            raise TaskFailure("TaskProviderError", f"{node.type}: {type(exc).__name__}: {exc}") from exc
        return output if isinstance(output, TaskResult) else TaskResult(output=output)

    def run_config(self, kind: str, config: dict[str, Any], meta: TaskMeta) -> Any:
        """Run a provider type for the engine's own needs (an approval's email or sms): no task, no run."""
        return self._call(Node(id=meta.task_id, type=kind, config=config), config, meta, None, None, None)

    def _call(self, node: Node, config: dict[str, Any], meta: TaskMeta, run, scope, ctx, plan=None) -> Any:
        spec = self.catalogue.get(node.type)
        runtime = self.providers.runtimes.get(node.type or "")
        if spec is None or runtime is None:
            raise TaskFailure("UnsupportedTaskType", f"there is no '{node.type}' task type")
        if spec.in_worker and not isinstance(config, dict):
            raise TaskFailure("InvalidConfig", f"a {node.type} task's config must be an object")
        return runtime.run(TaskCall(node=node, config=config, meta=meta, settings=self.settings,
                                    providers=self.providers, run=run, scope=scope, ctx=ctx, plan=plan))
