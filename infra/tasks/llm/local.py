"""The ``local`` llm provider: a deterministic stand-in (the default locally), recorded in the outbox."""

from __future__ import annotations

import hashlib
import json

from .. import outbox
from ..common import TaskMeta
from .request import LlmRequest
from .schema_sample import SchemaSample


class LocalLlm:
    """The deterministic stand-in: the same prompt always gives the same answer. With a schema,
    the answer is the smallest value per JSON Schema type, seeded by the prompt's hash."""

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
