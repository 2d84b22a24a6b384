"""What every llm provider is asked: :class:`LlmRequest`, and the :class:`LlmProvider` protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from ..base import TaskFailure
from ..common import INVALID_CONFIG, TaskMeta

# An llm task runs in the worker, whose Lambda gives a task at most MAX_WORKER_TASK_TIMEOUT (25 s):
# a longer default could never finish there (issue #9 item 8).
DEFAULT_TIMEOUT = 25.0
RESPONSE_ERROR = "LlmResponseError"
PROVIDER_ERROR = "LlmProviderError"
THROTTLED = "LlmThrottled"


@dataclass(frozen=True)
class LlmRequest:
    model: str | None
    prompt: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    schema: dict[str, Any] | None = None
    timeout: float = DEFAULT_TIMEOUT


class LlmProvider(Protocol):
    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        """The model's answer as text (JSON text when ``request.schema`` is set)."""


def schema_instruction(schema: dict[str, Any]) -> str:
    return ("Answer with a single JSON value, and nothing else, that validates against this JSON Schema:\n"
            + json.dumps(schema, separators=(",", ":")))


def system_prompt(request: LlmRequest) -> str | None:
    """The system message as sent: the task's own, then (with a schema) how to answer."""
    parts = [p for p in (request.system, schema_instruction(request.schema) if request.schema else None) if p]
    return "\n\n".join(parts) or None


def model_for(request: LlmRequest, provider: str, default: str | None) -> str:
    """The task's model, else the deployment's (LOOPLINE_LLM_MODEL)."""
    model = request.model or default
    if not model:
        raise TaskFailure(INVALID_CONFIG, f"the {provider} provider needs 'config.model' (or LOOPLINE_LLM_MODEL)")
    return model
