"""The tool-calling loop of an ``llm`` task with ``config.tools`` (docs/task-types.md, "llm: tools").

Each round sends the prompt, the tools and the rounds so far to the model; each
tool call in its reply is run with the model's arguments, checked first against
the tool's ``parameters`` (a bad call, an unknown tool or a function that fails
is answered to the model as an error, not a failure of the task), and the next
round asks again. A reply without tool calls is the answer. A model still asking
for tools after ``max_tool_rounds`` rounds fails the task (``LlmToolRoundsExceeded``);
the whole loop shares the task's one timeout.

A function runs as a ``custom`` task's handler does, in the sandbox and never in
this process (:func:`infra.sandbox.launch.run_code`). Every call is recorded in
the task's output (``tool_calls``), so it is in the run's history.

The loop is one attempt: a retry, or a crash before the result is recorded,
runs it again from the start, and tools with side effects then run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jsonschema
from jsonschema.validators import validator_for
from pydantic import TypeAdapter, ValidationError

from statemachine.llm_tools import DEFAULT_TOOL_ROUNDS, NO_PARAMETERS, LlmTool

from ...sandbox.request import CodeReply, CodeRequest
from ..base import TaskFailure
from ..common import INVALID_CONFIG, TaskMeta
from .conversation import TOOL_ROUNDS_EXCEEDED, Exchange, ToolCall, ToolCallingProvider, ToolOutcome, ToolSpec
from .request import LlmRequest
from .task_tools import TaskTool

CodeRunner = Callable[[CodeRequest], CodeReply]
_TOOLS = TypeAdapter(list[LlmTool])


def tool_specs(config: dict[str, Any],
               describe: Callable[[str], str | None] = lambda task_id: None) -> tuple[ToolSpec, ...]:
    """``config.tools`` as rendered, checked again (the compiler checked it as written); ``describe``: a
    tool task's description when the tool gives none."""
    try:
        tools = _TOOLS.validate_python(config.get("tools"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TaskFailure(INVALID_CONFIG, f"'config.tools{('.' + where) if where else ''}': {first['msg']}") from exc
    names = [t.tool_name for t in tools]
    if len(set(names)) != len(names):
        raise TaskFailure(INVALID_CONFIG, "'config.tools': two tools have the same name")
    return tuple(ToolSpec(t.tool_name, t.description or (describe(t.task) if t.task else None),
                          t.parameters or dict(NO_PARAMETERS), t.function, t.task) for t in tools)


def max_rounds(config: dict[str, Any]) -> int:
    value = config.get("max_tool_rounds", DEFAULT_TOOL_ROUNDS)
    if value is None:
        return DEFAULT_TOOL_ROUNDS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TaskFailure(INVALID_CONFIG, "'config.max_tool_rounds' must be a positive integer")
    return value


def argument_problem(arguments: Any, schema: dict[str, Any]) -> str | None:
    if not isinstance(arguments, dict):
        return f"the arguments must be a JSON object, not {str(arguments)[:200]!r}"
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return None
    found = "; ".join(f"at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors[:5])
    return f"the arguments do not match the tool's parameters: {found}"


class ToolLoop:
    """One llm task's loop: ``run_code`` runs a function tool (the sandbox), ``run_task`` a tool task
    (llm/task_tools.py), ``clock`` measures time."""

    def __init__(self, provider: ToolCallingProvider, run_code: CodeRunner, custom_modules: tuple[str, ...],
                 run_task: TaskTool | None = None, clock: Callable[[], float] = time.monotonic):
        self.provider = provider
        self.run_code = run_code
        self.custom_modules = custom_modules
        self.run_task = run_task
        self.clock = clock

    def run(self, request: LlmRequest, tools: tuple[ToolSpec, ...], rounds: int,
            meta: TaskMeta) -> tuple[str, list[dict[str, Any]]]:
        """The final answer's text, and every tool call made (in order)."""
        deadline = self.clock() + request.timeout
        history: list[Exchange] = []
        recorded: list[dict[str, Any]] = []
        for round_number in range(rounds + 1):
            remaining = self._remaining(deadline, request)
            turn = self.provider.converse(_with_timeout(request, remaining), tools, tuple(history), meta)
            if not turn.calls:
                return turn.text, recorded
            if round_number == rounds:
                asked = ", ".join(sorted({c.name for c in turn.calls}))
                raise TaskFailure(TOOL_ROUNDS_EXCEEDED,
                                  f"the model still asked for tools ({asked}) after max_tool_rounds={rounds} "
                                  f"rounds of tool calls")
            outcomes = []
            for call in turn.calls:
                outcome, record = self._call(call, tools, deadline, request, meta)
                outcomes.append(outcome)
                recorded.append({"round": round_number + 1, **record})
            history.append(Exchange(turn, tuple(outcomes)))
        raise AssertionError("unreachable: the last round returns or raises")

    def _remaining(self, deadline: float, request: LlmRequest) -> float:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise TaskFailure("TaskTimeout", f"llm: the tool-calling loop did not end within {request.timeout:g}s")
        return remaining

    def _call(self, call: ToolCall, tools: tuple[ToolSpec, ...], deadline: float, request: LlmRequest,
              meta: TaskMeta) -> tuple[ToolOutcome, dict[str, Any]]:
        started = self.clock()
        record: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
        error: dict[str, str] | None
        tool = next((t for t in tools if t.name == call.name), None)
        if tool is None:
            error = {"type": "UnknownTool", "message": f"there is no tool named {call.name!r} (tools: "
                                                       f"{', '.join(t.name for t in tools)})"}
        elif problem := argument_problem(call.arguments, tool.parameters):
            error = {"type": "InvalidToolArguments", "message": problem}
        elif tool.task is not None:
            try:
                if self.run_task is None:
                    raise TaskFailure("UnknownTool", f"tool task '{tool.task}' cannot run here")
                output = self.run_task(tool.task, call.arguments, self._remaining(deadline, request))
            except TaskFailure as exc:
                error = exc.as_error()
            else:
                record.update(result=output, duration_ms=_ms(self.clock() - started))
                return ToolOutcome(call.id, call.name, output), record
        else:
            reply = self.run_code(CodeRequest(
                kind="custom", task_id=meta.task_id, run_id=meta.run_id,
                config={"handler": tool.function, "parameters": call.arguments},
                timeout=self._remaining(deadline, request), custom_modules=self.custom_modules))
            error = reply.error
            if error is None:
                record.update(result=reply.output, duration_ms=_ms(self.clock() - started))
                return ToolOutcome(call.id, call.name, reply.output), record
        record.update(error=error, duration_ms=_ms(self.clock() - started))
        return ToolOutcome(call.id, call.name, {"error": error}, is_error=True), record


def _ms(seconds: float) -> int:
    return max(int(round(seconds * 1000)), 0)


def _with_timeout(request: LlmRequest, timeout: float) -> LlmRequest:
    return replace(request, timeout=timeout)
