"""What crosses the boundary between the engine and the code it runs: one typed request, one reply.

The engine builds a :class:`CodeRequest` from a task's rendered config; whoever
runs it (a child process on one machine, the task-runner function on AWS)
answers with a :class:`CodeReply`. Both have one JSON encoding (``to_json`` /
``from_json``), used on every channel, so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from statemachine.limits import CODE_TASK_TYPES, MAX_CODE_TIMEOUT  # noqa: F401  (re-exported)

CodeKind = Literal["python", "shell", "custom"]
CODE_KINDS: tuple[str, ...] = CODE_TASK_TYPES
# What a task prints (stdout and stderr together) is kept with its attempt, cut to this size.
MAX_PRINTED = 8 * 1024


@dataclass(frozen=True)
class CodeRequest:
    """One attempt of one code-running task, everything the runner needs and nothing else.

    ``config`` is the task's config as rendered for this attempt (a python task's
    ``code`` is never rendered: run data reaches it only through ``namespace``).
    ``environment`` is exactly what the workflow passes to the code (shell
    ``config.environment``); nothing of the engine's own environment is added.
    ``custom_modules`` is the deployment's allowlist for custom handlers (empty: none).
    """

    kind: CodeKind
    task_id: str
    run_id: str
    config: dict[str, Any]
    timeout: float
    namespace: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    custom_modules: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CodeRequest:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("kind") not in CODE_KINDS:
            raise ValueError("not a code request")
        return cls(kind=data["kind"], task_id=str(data["task_id"]), run_id=str(data["run_id"]),
                   config=dict(data.get("config") or {}), timeout=float(data["timeout"]),
                   namespace=dict(data.get("namespace") or {}),
                   environment={str(k): str(v) for k, v in (data.get("environment") or {}).items()},
                   custom_modules=tuple(str(m) for m in data.get("custom_modules") or ()))


@dataclass(frozen=True)
class CodeReply:
    """The outcome of one request: ``error`` ({"type", "message"}) or ``output`` with ``names``
    (a python task's namespace, for its ``outputs`` expressions). ``printed`` is what the
    code wrote to stdout/stderr (python, custom), cut to ``MAX_PRINTED``; a shell task's
    streams are its output instead."""

    output: Any = None
    names: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None
    printed: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> CodeReply:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a code reply")
        error = data.get("error")
        if error is not None and not (isinstance(error, dict) and isinstance(error.get("type"), str)):
            raise ValueError("a code reply's error must be {type, message}")
        return cls(output=data.get("output"), names=dict(data.get("names") or {}),
                   error={"type": error["type"], "message": str(error.get("message", ""))} if error else None,
                   printed=str(data.get("printed") or "")[-MAX_PRINTED:])
