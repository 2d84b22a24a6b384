"""The ``custom`` task type: a Python function named ``module:function``, called in the worker.

The function is called with ``config.parameters`` as keyword arguments
(``handler(**parameters)``; declare ``def handler(**params)`` to take them all
as one dict). Its return value is the task's raw result and must be
JSON-serialisable. An exception it raises fails the task with the exception's
class name as the error type (raise :class:`infra.tasks.base.TaskFailure` to
choose the type). ``LOOPLINE_CUSTOM_MODULES`` (comma-separated module prefixes),
when set, limits which modules a workflow may name.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import threading
from typing import Any, Callable, Protocol

from . import common, settings
from .base import TaskFailure
from .common import TaskMeta

HANDLER_ERROR = "CustomHandlerError"
_HANDLER = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


class HandlerLoader(Protocol):
    def load(self, handler: str) -> Callable[..., Any]: ...


def _allowed(module: str) -> bool:
    prefixes = [p.strip() for p in (os.environ.get("LOOPLINE_CUSTOM_MODULES") or "").split(",") if p.strip()]
    return not prefixes or any(module == p or module.startswith(p.rstrip(".") + ".") for p in prefixes)


class ImportLoader:
    def load(self, handler: str) -> Callable[..., Any]:
        match = _HANDLER.match(handler)
        if not match:
            raise TaskFailure(HANDLER_ERROR, f"handler {handler!r} is not of the form 'module:function'")
        module_name, function_name = match.groups()
        if not _allowed(module_name):
            raise TaskFailure(HANDLER_ERROR, f"module {module_name!r} is not in LOOPLINE_CUSTOM_MODULES")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or the module's own code failing at import
            raise TaskFailure(HANDLER_ERROR, f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
        function = getattr(module, function_name, None)
        if function is None:
            raise TaskFailure(HANDLER_ERROR, f"module {module_name!r} has no {function_name!r}")
        if not callable(function):
            raise TaskFailure(HANDLER_ERROR, f"{handler!r} is not callable")
        return function


settings.register("custom", "python", ImportLoader, aws_default=True, local_default=True)


def _call(function: Callable[..., Any], parameters: dict[str, Any], handler: str) -> Any:
    try:
        inspect.signature(function).bind(**parameters)
    except TypeError as exc:
        raise TaskFailure(HANDLER_ERROR, f"{handler} does not accept these parameters: {exc}") from exc
    except ValueError:
        pass  # no signature to check (some builtins): let the call decide
    try:
        return function(**parameters)
    except TaskFailure:
        raise
    except Exception as exc:
        raise TaskFailure(type(exc).__name__, str(exc) or type(exc).__name__) from exc


def run_custom(config: dict[str, Any], meta: TaskMeta) -> Any:
    handler = common.text(config, "handler", required=True) or ""
    parameters = config.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise TaskFailure(common.INVALID_CONFIG, "'config.parameters' must be an object (passed as keyword arguments)")
    loader: HandlerLoader = settings.create("custom")
    function = loader.load(handler)
    limit = common.timeout(config, meta, 0.0) if (config.get("timeout") is not None or meta.timeout) else None
    if limit is None:
        value = _call(function, dict(parameters), handler)
    else:
        value = _call_with_timeout(function, dict(parameters), handler, limit)
    return common.json_value(value, f"the return value of {handler}", HANDLER_ERROR)


def _call_with_timeout(function, parameters, handler: str, limit: float) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = _call(function, parameters, handler)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    # A Python function cannot be stopped from outside: after the timeout the
    # task fails and the thread is abandoned (a daemon, so it cannot hold the process).
    thread = threading.Thread(target=target, name=f"custom-{handler}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise TaskFailure("TaskTimeout", f"{handler} ran longer than {limit:g}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
