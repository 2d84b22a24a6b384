"""The ``llm`` task type: a prompt in, text (or an object matching ``response_format``) out.

Providers: ``bedrock`` (Amazon Bedrock Converse through boto3; default on
aws), ``openai`` (any OpenAI-compatible ``/v1/chat/completions`` endpoint:
``LOOPLINE_OPENAI_BASE_URL`` and ``LOOPLINE_OPENAI_API_KEY``) and ``local``
(deterministic, derived from a hash of the prompt; default locally).

With ``response_format`` (a JSON Schema) the model is asked for JSON, the
answer is parsed and validated, and the raw result is the object; an answer
that is not JSON or does not validate fails with ``LlmResponseError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema
from jsonschema.validators import validator_for

from . import aws_clients, common, outbox, settings
from .base import TaskFailure
from .common import INVALID_CONFIG, TaskMeta
from .http_task import check_url, fetch

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


def _system(request: LlmRequest) -> str | None:
    parts = [p for p in (request.system, schema_instruction(request.schema) if request.schema else None) if p]
    return "\n\n".join(parts) or None


def _model(request: LlmRequest, provider: str) -> str:
    model = request.model or os.environ.get("LOOPLINE_LLM_MODEL")
    if not model:
        raise TaskFailure(INVALID_CONFIG, f"the {provider} provider needs 'config.model' (or LOOPLINE_LLM_MODEL)")
    return model


# ------------------------------------------------------------------- bedrock


def _check_bedrock_model(model: str) -> None:
    """template.yaml lets the worker call only the models in BedrockModelArns, and passes the list as
    LOOPLINE_BEDROCK_MODELS; a model outside it fails naming the parameter instead of AccessDenied.
    (Unset: a deployment of its own, whose role decides.)"""
    listed = os.environ.get("LOOPLINE_BEDROCK_MODELS")
    if listed is None:
        return
    arns = [arn.strip() for arn in listed.split(",") if arn.strip()]
    if not any(model == arn or arn.endswith("/" + model) for arn in arns):
        raise TaskFailure(settings.PROVIDER_CONFIG_ERROR,
                          f"bedrock model {model!r} is not one this deployment may call: add its ARN to the "
                          f"template parameter BedrockModelArns (now: {', '.join(arns) or 'none'})")


class BedrockLlm:
    """Amazon Bedrock Converse. ``config.model`` is a model id or inference profile id."""

    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        region = os.environ.get("LOOPLINE_BEDROCK_REGION") or None
        client = aws_clients.client("bedrock-runtime", region=region, read_timeout=request.timeout)
        model = _model(request, "bedrock")
        _check_bedrock_model(model)
        kwargs: dict[str, Any] = {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"text": request.prompt}]}],
        }
        system = _system(request)
        if system:
            kwargs["system"] = [{"text": system}]
        inference: dict[str, Any] = {}
        if request.temperature is not None:
            inference["temperature"] = request.temperature
        if request.max_tokens is not None:
            inference["maxTokens"] = request.max_tokens
        if inference:
            kwargs["inferenceConfig"] = inference
        try:
            reply = client.converse(**kwargs)
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise TaskFailure("TaskTimeout", f"bedrock: no answer within {request.timeout:g}s") from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "Error")
            kind = THROTTLED if code in ("ThrottlingException", "ServiceQuotaExceededException") else PROVIDER_ERROR
            raise TaskFailure(kind, f"bedrock {code}: {err.get('Message', '')}") from exc
        except BotoCoreError as exc:
            raise TaskFailure(PROVIDER_ERROR, f"bedrock: {type(exc).__name__}: {exc}") from exc
        blocks = reply.get("output", {}).get("message", {}).get("content", [])
        return "".join(block.get("text", "") for block in blocks)


# -------------------------------------------------------------------- openai


class OpenAiLlm:
    """An OpenAI-compatible chat completions endpoint. ``LOOPLINE_OPENAI_BASE_URL`` is the API base:
    ``https://api.openai.com/v1`` (``/chat/completions`` is appended), or a bare host
    (``http://127.0.0.1:8000``: ``/v1/chat/completions`` is appended)."""

    def __init__(self) -> None:
        base = os.environ.get("LOOPLINE_OPENAI_BASE_URL") or ""
        if not base:
            raise TaskFailure(settings.PROVIDER_CONFIG_ERROR,
                              "the 'openai' llm provider needs LOOPLINE_OPENAI_BASE_URL")
        check_url(base, "LOOPLINE_OPENAI_BASE_URL")
        base = base.rstrip("/")
        if urllib.parse.urlsplit(base).path in ("", "/"):
            base += "/v1"
        self.url = base + "/chat/completions"
        self.key = os.environ.get("LOOPLINE_OPENAI_API_KEY") or ""

    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        messages = []
        system = _system(request)
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {"model": _model(request, "openai"), "messages": messages}
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
        response = fetch("POST", self.url, headers=headers, data=json.dumps(body).encode(),
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


# --------------------------------------------------------------------- local


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
                      {"text": answer})
        return answer


class SchemaSample:
    """A small value that validates against a JSON Schema, chosen deterministically from ``seed``."""

    FORMATS = {
        "date-time": "2000-01-01T00:00:00Z", "date": "2000-01-01", "time": "00:00:00Z",
        "email": "user@example.com", "idn-email": "user@example.com", "hostname": "example.com",
        "idn-hostname": "example.com", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
        "uri": "https://example.com/", "uri-reference": "https://example.com/", "iri": "https://example.com/",
        "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
        "duration": "PT1S", "regex": ".*", "json-pointer": "/",
    }

    def __init__(self, root: dict[str, Any], seed: str):
        self.root = root
        self.seed = seed
        self.depth = 0

    def value(self) -> Any:
        return self.sample(self.root, "")

    def _ref(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise TaskFailure(INVALID_CONFIG, f"response_format: only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                raise TaskFailure(INVALID_CONFIG, f"response_format: $ref {ref!r} points nowhere")
        return node

    def _merge(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema.get("allOf", []):
            part = self._merge(self._resolve(part))
            for key, value in part.items():
                if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                    merged[key] = {**merged.get(key, {}), **value}
                elif key == "required":
                    merged[key] = sorted(set(merged.get(key, [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return merged

    def _resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            target = self._ref(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, dict) else target
            seen += 1
        return schema

    def sample(self, schema: Any, path: str) -> Any:
        if schema is True or schema == {} or schema is None:
            return self._word(path)
        if schema is False:
            raise TaskFailure(INVALID_CONFIG, f"response_format: nothing validates against 'false' at {path or '/'}")
        self.depth += 1
        try:
            if self.depth > 32:
                return None
            schema = self._merge(self._resolve(schema))
            if "const" in schema:
                return schema["const"]
            if "enum" in schema and schema["enum"]:
                return schema["enum"][0]
            if "default" in schema:
                return schema["default"]
            for key in ("oneOf", "anyOf"):
                if schema.get(key):
                    base = {k: v for k, v in schema.items() if k != key}
                    option = self._merge(self._resolve(schema[key][0]))
                    return self.sample({**base, **option}, path)
            kind = schema.get("type")
            if isinstance(kind, list):
                kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
            if kind is None:
                kind = ("object" if "properties" in schema else "array" if "items" in schema
                        else "number" if any(k in schema for k in ("minimum", "maximum")) else "string")
            return getattr(self, f"_{kind}", self._string)(schema, path)
        finally:
            self.depth -= 1

    def _word(self, path: str) -> str:
        return "local-" + hashlib.sha256((self.seed + path).encode()).hexdigest()[:8]

    def _string(self, schema: dict[str, Any], path: str) -> str:
        if schema.get("format") in self.FORMATS:
            return self.FORMATS[schema["format"]]
        text = self._word(path)
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = (text * (low // len(text) + 1))[:low]
        if high is not None:
            text = text[: int(high)]
        return text

    def _number(self, schema: dict[str, Any], path: str, integer: bool = False) -> float | int:
        unit = schema.get("multipleOf") or (1 if integer else None)
        low, low_open = schema.get("minimum"), False
        high, high_open = schema.get("maximum"), False
        bound = schema.get("exclusiveMinimum")
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and (low is None or bound >= low):
            low, low_open = bound, True
        bound = schema.get("exclusiveMaximum")
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and (high is None or bound <= high):
            high, high_open = bound, True

        def above(v: float) -> bool:
            return low is None or (v > low if low_open else v >= low)

        def below(v: float) -> bool:
            return high is None or (v < high if high_open else v <= high)

        value: float = 0
        if not (above(value) and below(value)):
            if low is not None and not above(value):
                if unit:
                    value = math.floor(low / unit) * unit
                    while not above(value):
                        value += unit
                else:
                    value = low + (min(1, (high - low) / 2) if high is not None else 1) if low_open else low
            else:
                if unit:
                    value = math.ceil(high / unit) * unit
                    while not below(value):
                        value -= unit
                else:
                    value = high - 1 if high_open else high
        return int(value) if integer or float(value).is_integer() else value

    def _integer(self, schema: dict[str, Any], path: str) -> int:
        return int(self._number(schema, path, integer=True))

    def _boolean(self, schema: dict[str, Any], path: str) -> bool:
        return False

    def _null(self, schema: dict[str, Any], path: str) -> None:
        return None

    def _array(self, schema: dict[str, Any], path: str) -> list[Any]:
        prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
        items = schema.get("items") if isinstance(schema.get("items"), (dict, bool)) else {}
        count = max(int(schema.get("minItems", 0)), len(prefix) if prefix else 1)
        if schema.get("maxItems") is not None:
            count = min(count, int(schema["maxItems"]))
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self.sample(sub, f"{path}/{i}"))
        return out

    def _object(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in (schema.get("properties") or {}).items():
            out[name] = self.sample(sub, f"{path}/{name}")
        for name in schema.get("required", []):
            if name not in out:
                extra = schema.get("additionalProperties")
                out[name] = self.sample(extra if isinstance(extra, dict) else {}, f"{path}/{name}")
        return out


settings.register("llm", "bedrock", BedrockLlm, aws_default=True)
settings.register("llm", "openai", OpenAiLlm)
settings.register("llm", "local", LocalLlm, local_default=True)


# ---------------------------------------------------------------------- task

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


def run_llm(config: dict[str, Any], meta: TaskMeta) -> Any:
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
    provider: LlmProvider = settings.create("llm")
    text = provider.complete(request, meta)
    if request.schema is None:
        return text
    value = parse_json_answer(text)
    validate_answer(value, request.schema)
    return value
