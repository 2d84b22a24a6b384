"""The ``llm`` task type: ``bedrock`` (default on aws), ``openai`` or ``local`` (default locally); infra/tasks/llm/."""

from __future__ import annotations

from typing import Any

from statemachine.limits import DeploymentLimits

from ..llm import run_llm
from ..llm.bedrock import BedrockLlm
from ..llm.local import LocalLlm
from ..llm.openai import OpenAiLlm
from ..llm.task_tools import describe, task_tools
from ..llm.tools import ToolLoop
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> Any:
    provider = call.provider()
    loop = None
    if call.config.get("tools") is not None:
        # Function tools run as custom handlers do: the deployment's allowlist, the code provider's sandbox.
        modules = DeploymentLimits.from_setting(call.settings.custom_modules).custom_modules
        loop = ToolLoop(provider, call.providers.create("custom", call.settings), modules, task_tools(call))
    return run_llm(call.config, call.meta, provider, loop, describe(call))


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("bedrock", lambda settings: BedrockLlm(settings.llm, settings.aws), default_on=("aws",)),
    Provider("openai", lambda settings: OpenAiLlm(settings.llm, settings.egress())),
    Provider("local", lambda settings: LocalLlm(), default_on=("local",)),
))
