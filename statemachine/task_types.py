"""The language side of every task type, and the one list that names them all.

A :class:`TaskTypeSpec` is what the compiler needs to know of a type: its name,
the pydantic model that checks its ``config`` before a run, and where it runs
(``runs_code``: in the task runner; ``durable``: the engine waits on a timer or
a link, nothing runs meanwhile). Nothing here runs a task: the runtime side of
each type (its runner and providers) lives in ``infra/tasks/types/<name>.py``,
found by the type's name (docs/task-types.md, "Adding a task type").

:data:`TASK_TYPES` is the one list. Its order is the order error messages list
the types in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel

from statemachine import task_configs as configs


@dataclass(frozen=True)
class TaskTypeSpec:
    name: str
    # Checks of the literal parts of ``config`` (statemachine/task_configs.py); None: nothing to check.
    config: type[BaseModel] | None = None
    # Runs the workflow's own code, in the task runner (python, shell, custom), never in the worker.
    runs_code: bool = False
    # The engine's own wait (wait, callback, approval): no runner, no provider.
    durable: bool = False
    # Config keys holding source code rather than text: ``${}`` in them is not an expression.
    source_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.runs_code and self.durable:
            raise ValueError(f"task type '{self.name}' cannot both run code and wait durably")

    @property
    def in_worker(self) -> bool:
        """Whether a task of this type runs inside the worker (a provider type)."""
        return not (self.runs_code or self.durable)


class TaskCatalogue:
    """Task types by name, each once; immutable (:meth:`with_types` makes a new one)."""

    def __init__(self, specs: Iterable[TaskTypeSpec]):
        by_name: dict[str, TaskTypeSpec] = {}
        for spec in specs:
            if spec.name in by_name:
                raise ValueError(f"task type '{spec.name}' is listed twice")
            by_name[spec.name] = spec
        self._by_name = by_name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[TaskTypeSpec]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: object) -> TaskTypeSpec | None:
        return self._by_name.get(name) if isinstance(name, str) else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def code_types(self) -> tuple[str, ...]:
        return tuple(s.name for s in self if s.runs_code)

    @property
    def durable_types(self) -> tuple[str, ...]:
        return tuple(s.name for s in self if s.durable)

    def with_types(self, *specs: TaskTypeSpec) -> TaskCatalogue:
        """This catalogue and ``specs`` (a deployment's or a test's own types); a name taken is an error."""
        return TaskCatalogue((*self, *specs))


TASK_TYPES = TaskCatalogue((
    TaskTypeSpec("python", configs.PythonConfig, runs_code=True, source_keys=("code",)),
    TaskTypeSpec("shell", configs.ShellConfig, runs_code=True),
    TaskTypeSpec("http", configs.HttpConfig),
    TaskTypeSpec("llm", configs.LlmConfig),
    TaskTypeSpec("email", configs.EmailConfig),
    TaskTypeSpec("sms", configs.SmsConfig),
    TaskTypeSpec("voice", configs.VoiceConfig),
    TaskTypeSpec("browser", configs.BrowserConfig),
    TaskTypeSpec("database", configs.DatabaseConfig),
    TaskTypeSpec("file", configs.FileConfig),
    TaskTypeSpec("wait", configs.WaitConfig, durable=True),
    TaskTypeSpec("callback", configs.CallbackConfig, durable=True),
    TaskTypeSpec("approval", configs.ApprovalTaskConfig, durable=True),
    TaskTypeSpec("custom", configs.CustomConfig, runs_code=True),
))
