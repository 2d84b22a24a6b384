"""The ``llm`` task type: ``bedrock`` (default on aws), ``openai`` or ``local`` (default locally); infra/tasks/llm/."""

from __future__ import annotations

from typing import Any

from statemachine.limits import CODE_TASK_TYPES, DeploymentLimits

from ..base import TaskFailure
from ..llm import run_llm
from ..llm.bedrock import BedrockLlm
from ..llm.local import LocalLlm
from ..llm.openai import OpenAiLlm
from ..llm.task_tools import describe, task_tools
from ..llm.tools import ToolLoop
from ..runtime import Provider, TaskCall, TaskRuntime


def code_tools(config: dict[str, Any], plan: Any) -> list[str]:
    """The tools of an llm task that run code: function tools, and python/shell/custom tool tasks."""
    found = []
    for tool in config.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        task = plan.nodes.get(tool.get("task")) if plan is not None and isinstance(tool.get("task"), str) else None
        if tool.get("function") is not None or (task is not None and task.type in CODE_TASK_TYPES):
            found.append(str(tool.get("name") or tool.get("task") or tool.get("function")))
    return found


def run(call: TaskCall) -> Any:
    provider = call.provider()
    loop = None
    if call.config.get("tools") is not None and call.settings.provider_environment() == "aws" \
            and not call.settings.code_tools_in_worker and (names := code_tools(call.config, call.plan)):
        # Deny by default: on AWS an llm task runs in the worker, and so would its code tools, beside the
        # worker's role and the runtime API it takes messages from (docs/security.md).
        raise TaskFailure("ToolNotAllowed", f"tools {', '.join(names)} run code, which this deployment does not "
                                            "run in the worker on AWS (LOOPLINE_CODE_TOOLS_IN_WORKER is not set): "
                                            "use http tools, or run code as tasks of their own")
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
