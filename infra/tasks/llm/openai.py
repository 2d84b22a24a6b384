"""The ``openai`` llm provider: any OpenAI-compatible ``/v1/chat/completions`` endpoint
(``LOOPLINE_OPENAI_BASE_URL`` and ``LOOPLINE_OPENAI_API_KEY``), reached through the egress policy."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from .. import common
from ..base import PROVIDER_CONFIG_ERROR, TaskFailure
from ..common import TaskMeta
from ..egress import EgressPolicy
from ..http_task import check_url, fetch
from ..settings import LlmSettings
from .request import PROVIDER_ERROR, RESPONSE_ERROR, THROTTLED, LlmRequest, model_for, system_prompt


class OpenAiLlm:
    """An OpenAI-compatible chat completions endpoint. ``LOOPLINE_OPENAI_BASE_URL`` is the API base:
    ``https://api.openai.com/v1`` (``/chat/completions`` is appended), or a bare host
    (``http://127.0.0.1:8000``: ``/v1/chat/completions`` is appended)."""

    def __init__(self, llm: LlmSettings, policy: EgressPolicy) -> None:
        base = llm.openai_base_url
        if not base:
            raise TaskFailure(PROVIDER_CONFIG_ERROR,
                              "the 'openai' llm provider needs LOOPLINE_OPENAI_BASE_URL")
        check_url(base, "LOOPLINE_OPENAI_BASE_URL")
        base = base.rstrip("/")
        if urllib.parse.urlsplit(base).path in ("", "/"):
            base += "/v1"
        self.url = base + "/chat/completions"
        self.key = llm.openai_api_key
        self.default_model = llm.model
        self.policy = policy

    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        messages = []
        system = system_prompt(request)
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {"model": model_for(request, "openai", self.default_model), "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": request.schema}}
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        response = fetch("POST", self.url, policy=self.policy, headers=headers, data=json.dumps(body).encode(),
                         timeout=request.timeout, connection_error=PROVIDER_ERROR)
        if response.status >= 400:
            kind = THROTTLED if response.status == 429 else PROVIDER_ERROR
            raise TaskFailure(kind, f"openai {response.status} {response.reason}: {common.excerpt(response.body)}")
        try:
            reply = json.loads(response.body)
            content = reply["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TaskFailure(RESPONSE_ERROR, f"openai: unexpected answer: {common.excerpt(response.body)}") from exc
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return content or ""
