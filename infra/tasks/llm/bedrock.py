"""The ``bedrock`` llm provider: Amazon Bedrock Converse through boto3 (the default on aws)."""

from __future__ import annotations

from typing import Any

from .. import aws_clients
from ..base import PROVIDER_CONFIG_ERROR, TaskFailure
from ..common import TaskMeta
from ..settings import AwsSettings, LlmSettings
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
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        client = aws_clients.client(self.aws, "bedrock-runtime", region=self.llm.bedrock_region,
                                    read_timeout=request.timeout)
        model = model_for(request, "bedrock", self.llm.model)
        check_model(model, self.llm.bedrock_models)
        kwargs: dict[str, Any] = {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"text": request.prompt}]}],
        }
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
