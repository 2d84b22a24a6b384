"""The values a workflow built in Python is made of, and how they become the YAML document's plain data.

Pure: nothing here does I/O. ``plain`` turns what a Python author naturally writes (a ``timedelta``, a
tuple, a ``datetime``) into the JSON-shaped data the workflow language reads, and refuses what it
cannot say (a set, an object, NaN) at the call that passed it, not later in a YAML error.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypedDict

from statemachine.plan import TriggerRule

Duration = str | int | float | timedelta  # "30s", "1h30m", "P1D", seconds, or a timedelta
_HERE = {str(Path(__file__).with_name(name)) for name in ("builder.py", "builder_values.py", "builder_yaml.py")}


class BuilderError(ValueError):
    """A mistake in a workflow built in Python, raised before any YAML is written. Its message starts with
    the place in the author's file (``flow.py:12``) of the call that made the mistake."""


def call_site() -> str:
    """``file:line`` of the author's call into the builder (the first frame outside these modules)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename in _HERE:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def plain(value: Any, where: str) -> Any:
    """``value`` as JSON-shaped data: durations in seconds, dates as ISO text, tuples as lists."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or type(value) in (bool, str, int):
        return value
    for kind in (bool, str, int):  # a subclass (a str enum's member, an IntFlag) as its plain value
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BuilderError(f"{call_site()}: {where}: {value} is not a number a workflow can hold")
        return value
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BuilderError(f"{call_site()}: {where}: key {key!r} is not a string")
            out[key] = plain(item, where)
        return out
    if isinstance(value, (list, tuple)):
        return [plain(item, where) for item in value]
    raise BuilderError(f"{call_site()}: {where}: a {type(value).__name__} cannot be written in a workflow "
                       "(use strings, numbers, booleans, None, lists, dicts, timedelta or datetime)")


@dataclass(frozen=True)
class Retry:
    """A task's ``retry`` (docs/reference.md): ``Retry(max_attempts=3, strategy="fixed", delay="1s")``, or
    ``Retry(strategy="custom", delays=("1s", "10s", "1m"))``."""

    max_attempts: int | None = None
    strategy: Literal["exponential", "fixed", "custom"] | None = None
    delay: Duration | None = None
    max_delay: Duration | None = None
    backoff_multiplier: float | None = None
    jitter: Literal["full", "none"] | None = None
    retryable_errors: tuple[str, ...] | None = None
    delays: tuple[Duration, ...] | None = None  # strategy "custom": the waits before each retry, in order

    def to_dict(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name), "retry") for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Compensation:
    """What undoes a task when the run fails (or is cancelled): ``Compensation("refund")``."""

    task_id: str
    on_failure: bool = True
    on_cancel: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id}
        if not self.on_failure:
            out["on_failure"] = False
        if not self.on_cancel:
            out["on_cancel"] = False
        return out


class ApprovalOptions(TypedDict, total=False):
    """What every task may say besides its type's ``config`` (docs/reference.md, "tasks"), but its
    ``description``: an approval's ``description`` is its request's (use ``task`` for both)."""

    name: str
    after: list[str] | tuple[str, ...] | str  # depends_on
    depends_on: list[str] | tuple[str, ...] | str
    when: Any  # an expression, "${...}"
    skip_if: Any
    trigger_rule: TriggerRule
    retry: Retry | Mapping[str, Any] | int  # an int: that many attempts
    timeout: Duration
    requires_approval: Mapping[str, Any] | bool
    outputs: Mapping[str, Any]  # name -> expression, read as tasks.<id>.output.<name>
    export: Mapping[str, Any]  # the same, and exported as a workflow variable
    compensation: Compensation | Mapping[str, Any] | str  # a str: the compensating task's id
    renamed_from: str
    circuit_breaker: Mapping[str, Any]  # {name, failures, window, open_for}: docs/reference.md, circuit_breaker


class TaskOptions(ApprovalOptions, total=False):
    description: str


def ids(value: Iterable[str] | str, where: str) -> list[str]:
    listed = [value] if isinstance(value, str) else list(value)
    for item in listed:
        if not isinstance(item, str):
            raise BuilderError(f"{call_site()}: {where}: {item!r} is not a task id")
    return listed


def task_fields(task_id: str, task_type: str, config: Mapping[str, Any] | None,
                options: TaskOptions) -> dict[str, Any]:
    """One task as the YAML document's mapping, its keys in the order reference.md writes them."""
    where = f"task '{task_id}'"
    unknown = sorted(set(options) - set(TaskOptions.__annotations__))
    if unknown:
        raise BuilderError(f"{call_site()}: {where}: unknown option '{unknown[0]}' (the options are: "
                           f"{', '.join(TaskOptions.__annotations__)}; the type's own settings go in config)")
    if "after" in options and "depends_on" in options:
        raise BuilderError(f"{call_site()}: {where}: give 'after' or 'depends_on', not both")
    out: dict[str, Any] = {"id": task_id}
    for key in ("name", "description"):
        if key in options:
            out[key] = options[key]
    out["type"] = task_type
    after = options.get("after", options.get("depends_on"))
    if after:
        out["depends_on"] = ids(after, where)
    for key in ("when", "skip_if", "trigger_rule"):
        if options.get(key) is not None:
            out[key] = plain(options[key], where)  # type: ignore[literal-required]
    if options.get("requires_approval") not in (None, False):
        approval = options["requires_approval"]
        out["requires_approval"] = {} if approval is True else plain(approval, where)
    if options.get("retry") is not None:
        out["retry"] = _retry(options["retry"], where)
    if options.get("timeout") is not None:
        out["timeout"] = plain(options["timeout"], where)
    if options.get("circuit_breaker") is not None:
        out["circuit_breaker"] = plain(options["circuit_breaker"], where)
    if config:
        out["config"] = plain(config, where)
    declared = [{"name": name, "value": plain(value, where)} for name, value in (options.get("outputs") or {}).items()]
    declared += [{"name": name, "value": plain(value, where), "export": True}
                 for name, value in (options.get("export") or {}).items()]
    if declared:
        out["outputs"] = declared
    if options.get("compensation") is not None:
        out["compensation"] = _compensation(options["compensation"], where)
    if options.get("renamed_from"):
        out["renamed_from"] = options["renamed_from"]
    return out


def _retry(value: Retry | Mapping[str, Any] | int, where: str) -> dict[str, Any]:
    if isinstance(value, bool):
        raise BuilderError(f"{call_site()}: {where}: retry is a Retry, a dict or a number of attempts")
    if isinstance(value, int):
        return {"max_attempts": value}
    return value.to_dict() if isinstance(value, Retry) else plain(value, where)


def _compensation(value: Compensation | Mapping[str, Any] | str, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"task_id": value}
    return value.to_dict() if isinstance(value, Compensation) else plain(value, where)
