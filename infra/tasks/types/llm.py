"""The ``llm`` task type: ``bedrock`` (default on aws), ``openai`` or ``local`` (default locally); infra/tasks/llm/."""

from __future__ import annotations

from typing import Any

from ..llm import run_llm
from ..llm.bedrock import BedrockLlm
from ..llm.local import LocalLlm
from ..llm.openai import OpenAiLlm
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> Any:
    return run_llm(call.config, call.meta, call.provider())


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("bedrock", lambda settings: BedrockLlm(settings.llm, settings.aws), default_on=("aws",)),
    Provider("openai", lambda settings: OpenAiLlm(settings.llm, settings.egress())),
    Provider("local", lambda settings: LocalLlm(), default_on=("local",)),
))
