"""The task-type interface: a provider turns a rendered config into a result or a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskResult:
    output: Any
    # Names the result defines for the task's ``outputs`` expressions (dsl.md: a
    # python task's namespace, ``response`` for the others).
    names: dict[str, Any] = field(default_factory=dict)
    # What the task's code printed (python, custom), its last MAX_PRINTED bytes, kept with the attempt.
    printed: str = ""


class TaskFailure(Exception):
    """A task's own failure, with the error type that retry and catch match on."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def as_error(self) -> dict[str, str]:
        return {"type": self.error_type, "message": self.message}


# The deployment's provider configuration is wrong (an unknown provider, a missing URL): the task fails
# with this type, so the run shows why instead of a raw exception.
PROVIDER_CONFIG_ERROR = "ProviderConfigError"
