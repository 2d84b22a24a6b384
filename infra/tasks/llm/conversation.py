"""A tool-calling conversation in the providers' common terms: what each provider translates to its wire format.

The model is sent the prompt, the tools (:class:`ToolSpec`) and every earlier
:class:`Exchange` (its own reply asking for tools, and the results sent back);
it answers with a :class:`ModelTurn`: text, and the tool calls it wants made
(none: the text is the final answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from ..common import TaskMeta
from .request import LlmRequest

TOOL_ROUNDS_EXCEEDED = "LlmToolRoundsExceeded"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str | None
    parameters: dict[str, Any]  # a JSON Schema of an object
    function: str | None = None  # module:callable
    task: str | None = None  # a task that runs only as this tool


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # The model's arguments: an object normally; whatever it sent otherwise (the loop tells it so).
    arguments: Any


@dataclass(frozen=True)
class ToolOutcome:
    call_id: str
    name: str
    value: Any  # the function's result, or {"error": {type, message}}
    is_error: bool = False

    @property
    def content(self) -> str:
        """The result as the model reads it: JSON text."""
        return json.dumps(self.value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ModelTurn:
    text: str
    calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Exchange:
    """One round: the model's turn asking for tools, and what they answered, in the order asked."""

    turn: ModelTurn
    outcomes: tuple[ToolOutcome, ...]


class ToolCallingProvider(Protocol):
    def converse(self, request: LlmRequest, tools: tuple[ToolSpec, ...], history: tuple[Exchange, ...],
                 meta: TaskMeta) -> ModelTurn:
        """The model's next turn, given the prompt, the tools and the rounds so far."""


def arguments_from_text(text: Any) -> Any:
    """OpenAI sends a call's arguments as JSON text; text that is not JSON is kept for the error message."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text
