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
from .conversation import Exchange, ModelTurn, ToolCall, ToolSpec, arguments_from_text
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
        return _text(self._message(self._body(request, self._messages(request)), request))

    def converse(self, request: LlmRequest, tools: tuple[ToolSpec, ...], history: tuple[Exchange, ...],
                 meta: TaskMeta) -> ModelTurn:
        """Chat completions' function calling: ``tools``, the reply's ``tool_calls``, a ``tool`` message each."""
        messages = self._messages(request)
        for exchange in history:
            messages.append({"role": "assistant", "content": exchange.turn.text or None, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in exchange.turn.calls]})
            messages += [{"role": "tool", "tool_call_id": o.call_id, "content": o.content} for o in exchange.outcomes]
        body = self._body(request, messages)
        body["tools"] = [{"type": "function", "function": {
            "name": t.name, **({"description": t.description} if t.description else {}), "parameters": t.parameters}}
            for t in tools]
        message = self._message(body, request)
        try:
            calls = tuple(ToolCall(str(c["id"]), str(c["function"]["name"]),
                                   arguments_from_text(c["function"].get("arguments")))
                          for c in message.get("tool_calls") or ())
        except (KeyError, TypeError, AttributeError) as exc:
            raise TaskFailure(RESPONSE_ERROR, f"openai: unexpected tool_calls: {common.excerpt(str(message))}") from exc
        return ModelTurn(_text(message), calls)

    def _messages(self, request: LlmRequest) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        system = system_prompt(request)
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": request.prompt})
        return messages

    def _body(self, request: LlmRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model_for(request, "openai", self.default_model), "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": request.schema}}
        return body

    def _message(self, body: dict[str, Any], request: LlmRequest) -> dict[str, Any]:
        """The reply's ``choices[0].message``."""
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        response = fetch("POST", self.url, policy=self.policy, headers=headers, data=json.dumps(body).encode(),
                         timeout=request.timeout, connection_error=PROVIDER_ERROR)
        if response.status >= 400:
            kind = THROTTLED if response.status == 429 else PROVIDER_ERROR
            raise TaskFailure(kind, f"openai {response.status} {response.reason}: {common.excerpt(response.body)}")
        try:
            message = json.loads(response.body)["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("the message is not an object")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TaskFailure(RESPONSE_ERROR, f"openai: unexpected answer: {common.excerpt(response.body)}") from exc
        return message


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""
