"""The ``local`` llm provider: a deterministic stand-in (the default locally), recorded in the outbox."""

from __future__ import annotations

import hashlib
import json

from .. import outbox
from ..common import TaskMeta
from .conversation import Exchange, ModelTurn, ToolCall, ToolSpec
from .request import LlmRequest
from .schema_sample import SchemaSample


class LocalLlm:
    """The deterministic stand-in: the same prompt always gives the same answer. With a schema,
    the answer is the smallest value per JSON Schema type, seeded by the prompt's hash.

    With tools it follows a script: the first turn calls every tool once, in the order listed,
    with arguments sampled from its ``parameters`` (seeded by the prompt's hash and the tool's
    name); the next turn answers as it would without tools."""

    def converse(self, request: LlmRequest, tools: tuple[ToolSpec, ...], history: tuple[Exchange, ...],
                 meta: TaskMeta) -> ModelTurn:
        if history or not tools:
            return ModelTurn(self.complete(request, meta))
        seed = hashlib.sha256(json.dumps([request.system, request.prompt], sort_keys=True).encode()).hexdigest()
        calls = tuple(ToolCall(f"local-{i + 1}", tool.name, SchemaSample(tool.parameters, seed + tool.name).value())
                      for i, tool in enumerate(tools))
        outbox.record("llm", meta.task_id, meta.run_id,
                      {"model": request.model, "prompt": request.prompt, "system_message": request.system,
                       "tools": [tool.name for tool in tools]},
                      {"tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]},
                      at=meta.at)
        return ModelTurn("", calls)

    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        digest = hashlib.sha256(
            json.dumps([request.system, request.prompt, request.schema], sort_keys=True).encode()).hexdigest()
        if request.schema is not None:
            answer = json.dumps(SchemaSample(request.schema, digest).value())
        else:
            words = " ".join(request.prompt.split())
            gist = words[:120] + ("..." if len(words) > 120 else "")
            answer = f"[local llm {digest[:12]}] {gist}"
        outbox.record("llm", meta.task_id, meta.run_id,
                      {"model": request.model, "prompt": request.prompt, "system_message": request.system,
                       "temperature": request.temperature, "max_tokens": request.max_tokens,
                       "response_format": request.schema},
                      {"text": answer}, at=meta.at)
        return answer
