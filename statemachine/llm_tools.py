"""The ``tools`` of an ``llm`` task, as written: what the compiler checks before a run (docs/task-types.md).

A tool is a registered function (``function: "module:callable"``) or a task of
the workflow that runs only as this tool (``task: <id>``, statemachine/tool_tasks.py)
the model may call; its arguments are checked against ``parameters`` (a JSON
Schema of an object) before it runs. A function's module must be allowed by the
deployment, as a ``custom`` task's handler (statemachine/admission.py), so the
list must be written in the file, not computed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from statemachine.dsl import matching

# What OpenAI's chat completions and Bedrock's Converse both accept as a tool's name.
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
FUNCTION = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
FUNCTION_PARTS = re.compile(r"^([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")
# A model asks for tools at most this many times in one task unless max_tool_rounds says otherwise.
DEFAULT_TOOL_ROUNDS = 5
MAX_TOOL_ROUNDS = 20
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class LlmTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A task tool is named after its task unless it says otherwise.
    name: Annotated[StrictStr | None, matching(TOOL_NAME, "tool name", "1 to 64 letters, digits, _ or -")] = None
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    function: Annotated[StrictStr | None, matching(FUNCTION, "function", "'module:callable'")] = None
    task: StrictStr | None = None  # the id of a task that runs only as this tool (statemachine/tool_tasks.py)

    @property
    def tool_name(self) -> str:
        return self.name or self.task or ""

    @model_validator(mode="after")
    def _check(self) -> "LlmTool":
        if (self.function is None) == (self.task is None):
            raise PydanticCustomError("llm", "a tool names either a registered 'function' ('module:callable') or "
                                             "a 'task' of this workflow, not {what}",
                                      {"what": "both" if self.function else "neither"})
        if self.name is None and not re.match(TOOL_NAME, self.task or ""):
            raise PydanticCustomError("llm", "a tool needs a 'name' (1 to 64 letters, digits, _ or -)", {})
        if self.parameters is not None:
            try:
                Draft202012Validator.check_schema(self.parameters)
            except SchemaError as exc:
                raise PydanticCustomError("llm", "tool '{name}': parameters is not a JSON Schema: {error}",
                                          {"name": self.tool_name, "error": exc.message}) from exc
            if self.parameters.get("type") != "object":
                raise PydanticCustomError("llm", "tool '{name}': parameters must be a JSON Schema of an object "
                                                 "(type: object): the arguments are passed by name",
                                          {"name": self.tool_name})
        return self


RoundCount = Annotated[StrictInt, Field(ge=1, le=MAX_TOOL_ROUNDS)]


def unique_names(tools: list[LlmTool] | None) -> None:
    seen: set[str] = set()
    for tool in tools or ():
        if tool.tool_name in seen:
            raise PydanticCustomError("llm", "two tools are named '{name}'", {"name": tool.tool_name})
        seen.add(tool.tool_name)


def function_modules(config: Any) -> list[tuple[tuple[Any, ...], str]]:
    """``(path relative to the config, module)`` of every function tool written in an llm config."""
    tools = config.get("tools") if isinstance(config, dict) else None
    found = []
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        match = FUNCTION_PARTS.match(function) if isinstance(function, str) else None
        if match:
            found.append((("tools", i, "function"), match.group(1)))
    return found
