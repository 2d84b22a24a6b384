"""The ``bedrock`` llm provider: Amazon Bedrock Converse through boto3 (the default on aws)."""

from __future__ import annotations

from typing import Any

from .. import aws_clients
from ..base import PROVIDER_CONFIG_ERROR, TaskFailure
from ..common import TaskMeta
from ..settings import AwsSettings, LlmSettings
from .conversation import Exchange, ModelTurn, ToolCall, ToolSpec
from .request import PROVIDER_ERROR, THROTTLED, LlmRequest, model_for, system_prompt


def check_model(model: str, allowed: tuple[str, ...] | None) -> None:
    """template.yaml lets the worker call only the models in BedrockModelArns, and passes the list as
    LOOPLINE_BEDROCK_MODELS (``allowed``); a model outside it fails naming the parameter instead of
    AccessDenied. (None: unset, a deployment of its own, whose role decides.)"""
    if allowed is None:
        return
    arns = list(allowed)
    if not any(model == arn or arn.endswith("/" + model) for arn in arns):
        raise TaskFailure(PROVIDER_CONFIG_ERROR,
                          f"bedrock model {model!r} is not one this deployment may call: add its ARN to the "
                          f"template parameter BedrockModelArns (now: {', '.join(arns) or 'none'})")


class BedrockLlm:
    """Amazon Bedrock Converse. ``config.model`` is a model id or inference profile id."""

    def __init__(self, llm: LlmSettings, aws: AwsSettings):
        self.llm = llm
        self.aws = aws

    def complete(self, request: LlmRequest, meta: TaskMeta) -> str:
        return _text(self._converse(request, [_user(request.prompt)]))

    def converse(self, request: LlmRequest, tools: tuple[ToolSpec, ...], history: tuple[Exchange, ...],
                 meta: TaskMeta) -> ModelTurn:
        """Converse's tool use: ``toolConfig``, the reply's ``toolUse`` blocks, a ``toolResult`` block each."""
        messages = [_user(request.prompt)]
        for exchange in history:
            said = [{"text": exchange.turn.text}] if exchange.turn.text else []
            messages.append({"role": "assistant", "content": said + [
                {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in exchange.turn.calls]})
            messages.append({"role": "user", "content": [
                {"toolResult": {"toolUseId": o.call_id, "content": [{"text": o.content}],
                                "status": "error" if o.is_error else "success"}} for o in exchange.outcomes]})
        tool_config = {"tools": [{"toolSpec": {
            "name": t.name, **({"description": t.description} if t.description else {}),
            "inputSchema": {"json": t.parameters}}} for t in tools]}
        blocks = self._converse(request, messages, tool_config)
        calls = tuple(ToolCall(str(use.get("toolUseId", "")), str(use.get("name", "")), use.get("input"))
                      for use in (block["toolUse"] for block in blocks if isinstance(block.get("toolUse"), dict)))
        return ModelTurn(_text(blocks), calls)

    def _converse(self, request: LlmRequest, messages: list[dict[str, Any]],
                  tool_config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The content blocks of the model's reply."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        client = aws_clients.client(self.aws, "bedrock-runtime", region=self.llm.bedrock_region,
                                    read_timeout=request.timeout)
        model = model_for(request, "bedrock", self.llm.model)
        check_model(model, self.llm.bedrock_models)
        kwargs: dict[str, Any] = {"modelId": model, "messages": messages}
        system = system_prompt(request)
        if system:
            kwargs["system"] = [{"text": system}]
        inference: dict[str, Any] = {}
        if request.temperature is not None:
            inference["temperature"] = request.temperature
        if request.max_tokens is not None:
            inference["maxTokens"] = request.max_tokens
        if inference:
            kwargs["inferenceConfig"] = inference
        if tool_config is not None:
            kwargs["toolConfig"] = tool_config
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
        return [b for b in reply.get("output", {}).get("message", {}).get("content", []) if isinstance(b, dict)]


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def _text(blocks: list[dict[str, Any]]) -> str:
    return "".join(block.get("text", "") for block in blocks)
