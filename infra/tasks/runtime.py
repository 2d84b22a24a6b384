"""The runtime side of a task type: its runner and the providers it may use.

Each type that runs outside the engine has a module ``infra/tasks/types/<name>.py``
(the code-running types share ``types/code.py``) whose ``RUNTIME`` is a
:class:`TaskRuntime`. Its language side (name, config checks) is its entry in
statemachine/task_types.py; :class:`infra.tasks.registry.TaskTypes` puts the two
together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from statemachine.plan import Node

from .base import PROVIDER_CONFIG_ERROR, TaskFailure
from .common import TaskMeta
from .settings import TaskSettings


@dataclass(frozen=True)
class Provider:
    """One way to serve a type (``ses`` or ``local`` for email), built from the settings for each task:
    building is cheap, and a provider whose configuration is missing fails that task, typed."""

    name: str
    build: Callable[[TaskSettings], Any]
    default_on: tuple[str, ...] = ()  # the environments (aws, local) where it is the default


@dataclass(frozen=True)
class TaskCall:
    """One task to run: its config rendered, the task as written, and what the deployment configured."""

    node: Node
    config: dict[str, Any]
    meta: TaskMeta
    settings: TaskSettings
    providers: ProviderChoice
    run: Any = None  # the run record (code types build their request from it)
    scope: Any = None
    ctx: Any = None
    plan: Any = None  # the run's plan (an llm task finds its tool tasks in it)

    def provider(self) -> Any:
        """This type's provider as the deployment chose it (LOOPLINE_PROVIDERS, else the defaults)."""
        return self.providers.create(self.node.type or "", self.settings)


@dataclass(frozen=True)
class TaskRuntime:
    """``run`` turns a call into the task's output (or a TaskResult with names, as code types return);
    a failure is a TaskFailure. ``default``: picks the default provider when it depends on the machine
    (the browser: Chromium if it is installed)."""

    run: Callable[[TaskCall], Any]
    providers: tuple[Provider, ...] = ()
    default: Callable[[TaskSettings], str] | None = None


@dataclass(frozen=True)
class ProviderChoice:
    """Every type's providers, and which one serves a type under given settings."""

    runtimes: dict[str, TaskRuntime]

    def available(self, kind: str) -> list[str]:
        runtime = self.runtimes.get(kind)
        return sorted(p.name for p in runtime.providers) if runtime else []

    def name(self, kind: str, settings: TaskSettings) -> str:
        chosen = settings.chosen_providers().get(kind)
        if chosen is not None:
            return chosen
        env = settings.provider_environment()
        runtime = self.runtimes.get(kind)
        providers = runtime.providers if runtime else ()
        defaults = [p.name for p in providers if env in p.default_on]
        if defaults:
            return defaults[0]
        if runtime is not None and runtime.default is not None:
            return runtime.default(settings)
        known = self.available(kind)
        if len(known) == 1:
            return known[0]
        raise TaskFailure(PROVIDER_CONFIG_ERROR,
                          f"no default '{kind}' provider for {env}; set LOOPLINE_PROVIDERS={kind}=<one of "
                          f"{', '.join(known) or 'none'}>")

    def create(self, kind: str, settings: TaskSettings) -> Any:
        name = self.name(kind, settings)
        runtime = self.runtimes.get(kind)
        found = next((p for p in runtime.providers if p.name == name), None) if runtime else None
        if found is None:
            raise TaskFailure(PROVIDER_CONFIG_ERROR,
                              f"unknown '{kind}' provider {name!r}; available: "
                              f"{', '.join(self.available(kind)) or 'none'}")
        return found.build(settings)

    def with_provider(self, kind: str, provider: Provider) -> ProviderChoice:
        runtime = self.runtimes[kind]
        kept = tuple(p for p in runtime.providers if p.name != provider.name)
        return ProviderChoice({**self.runtimes, kind: replace(runtime, providers=(*kept, provider))})
