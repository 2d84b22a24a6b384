"""The ``llm`` task type: a prompt in, text (or an object matching ``response_format``) out.

Providers, one module each: ``bedrock`` (Amazon Bedrock Converse; default on
aws), ``openai`` (any OpenAI-compatible chat completions endpoint) and ``local``
(deterministic, derived from a hash of the prompt; default locally). Which serves
a task is declared in infra/tasks/types/llm.py.

With ``response_format`` (a JSON Schema) the model is asked for JSON, the
answer is parsed and validated, and the raw result is the object; an answer
that is not JSON or does not validate fails with ``LlmResponseError``.

With ``tools`` the model may call registered functions first (``tools.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from .. import common
from ..base import TaskFailure
from ..common import INVALID_CONFIG, TaskMeta
from .request import DEFAULT_TIMEOUT, RESPONSE_ERROR, LlmProvider, LlmRequest
from .tools import ToolLoop, max_rounds, tool_specs

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?\s*```\s*$", re.S)


def parse_json_answer(text: str) -> Any:
    candidate = text.strip()
    fenced = _FENCE.match(candidate)
    if fenced:
        candidate = fenced.group(1).strip()
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = candidate.find(opener), candidate.rfind(closer)
        if start != -1 and end > start:
            try:
                return json.loads(candidate[start:end + 1])
            except ValueError:
                continue
    raise TaskFailure(RESPONSE_ERROR, f"the answer is not JSON: {common.excerpt(text, 300)}")


def response_schema(value: Any) -> dict[str, Any] | None:
    """``response_format`` as a JSON Schema; OpenAI's ``{type: json_schema, json_schema: {schema}}`` is unwrapped."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TaskFailure(INVALID_CONFIG, "'config.response_format' must be a JSON Schema object")
    if value.get("type") == "json_schema" and isinstance(value.get("json_schema"), dict):
        value = value["json_schema"].get("schema") or {}
    elif value.get("type") == "json_object" and set(value) == {"type"}:
        value = {"type": "object"}
    cls = validator_for(value, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise TaskFailure(INVALID_CONFIG,
                          f"'config.response_format' is not a valid JSON Schema: {exc.message}") from exc
    return value


def validate_answer(value: Any, schema: dict[str, Any]) -> None:
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/" + "/".join(str(p) for p in first.absolute_path)
        raise TaskFailure(RESPONSE_ERROR, f"the answer does not match response_format at {where}: {first.message}")


def run_llm(config: dict[str, Any], meta: TaskMeta, provider: LlmProvider, loop: ToolLoop | None = None,
            describe: Callable[[str], str | None] = lambda task_id: None) -> Any:
    """The answer; with ``config.tools`` (and ``loop``), ``{answer, tool_calls}`` (llm/tools.py)."""
    prompt = common.text(config, "prompt", required=True) or ""
    temperature = config.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
        raise TaskFailure(INVALID_CONFIG, "'config.temperature' must be a number")
    max_tokens = config.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise TaskFailure(INVALID_CONFIG, "'config.max_tokens' must be a positive integer")
    request = LlmRequest(
        model=common.text(config, "model"), prompt=prompt, system=common.text(config, "system_message"),
        temperature=float(temperature) if temperature is not None else None, max_tokens=max_tokens,
        schema=response_schema(config.get("response_format")), timeout=common.timeout(config, meta, DEFAULT_TIMEOUT),
    )
    if config.get("tools") is None:
        return _answer(provider.complete(request, meta), request)
    if loop is None:
        raise TaskFailure(INVALID_CONFIG, "this llm provider cannot call tools")
    text, calls = loop.run(request, tool_specs(config, describe), max_rounds(config), meta)
    return {"answer": _answer(text, request), "tool_calls": calls}


def _answer(text: str, request: LlmRequest) -> Any:
    if request.schema is None:
        return text
    value = parse_json_answer(text)
    validate_answer(value, request.schema)
    return value
