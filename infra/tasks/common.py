"""What every task-type provider shares: the task's identity, config accessors, JSON values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from statemachine.durations import parse_duration

from .base import TaskFailure

INVALID_CONFIG = "InvalidConfig"


@dataclass(frozen=True)
class TaskMeta:
    """Which task of which run a provider works for (outbox entries, file names, timeouts)."""

    task_id: str
    run_id: str
    workflow_id: str = ""
    timeout: float | None = None  # the task's own `timeout` (seconds), if it has one
    # The engine clock's time when the provider is called: what the outbox stamps, so a movable
    # clock's runs read as they ran (None: the wall clock, for a caller without an engine).
    at: datetime | None = None


def text(config: dict[str, Any], key: str, *, required: bool = False, default: str | None = None) -> str | None:
    """``config[key]`` as a string; numbers and booleans are written as the language writes them."""
    value = config.get(key)
    if value is None or value == "":
        if required:
            raise TaskFailure(INVALID_CONFIG, f"'config.{key}' is required")
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be a string, not {type(value).__name__}")


def text_list(config: dict[str, Any], key: str, *, required: bool = False) -> list[str]:
    """``config[key]`` as a list of strings; a single string is a list of one."""
    value = config.get(key)
    if value is None or value == "" or value == []:
        if required:
            raise TaskFailure(INVALID_CONFIG, f"'config.{key}' is required")
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be a string or a list of strings")
        out.append(text({"v": item}, "v") or "")
    return out


def flag(config: dict[str, Any], key: str, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be true or false")


def mapping(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be an object")
    return value


def timeout(config: dict[str, Any], meta: TaskMeta, default: float, key: str = "timeout") -> float:
    """The shorter of ``config.timeout`` and the task's own ``timeout``; ``default`` when neither is set."""
    limits = []
    if config.get(key) is not None:
        try:
            limits.append(parse_duration(config[key]))
        except ValueError as exc:
            raise TaskFailure(INVALID_CONFIG, f"'config.{key}': {exc}") from exc
    if meta.timeout:
        limits.append(float(meta.timeout))
    chosen = min(limits) if limits else default
    return max(chosen, 0.001)


def json_value(value: Any, what: str, error_type: str) -> Any:
    """``value`` as plain JSON (tuples become lists); anything JSON cannot hold is ``error_type``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TaskFailure(error_type, f"{what} is not JSON-serialisable: {exc}") from exc


def excerpt(data: bytes | str, limit: int = 500, tail: bool = False) -> str:
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    data = data.strip()
    if len(data) <= limit:
        return data
    return "..." + data[-limit:] if tail else data[:limit] + "..."
