"""The program of a python or custom task's process: run the workflow's code, write the result on fd N.

It is started as ``python -I -S -u -c <this source> N`` by the supervisor, as the
task user, in the attempt's private directory. It reads one JSON request on
stdin::

    {"kind": "python", "task_id", "code", "namespace", "limits"}
    {"kind": "custom", "handler", "parameters", "path", "limits"}
    {"kind": "resolve", "handlers", "path", "modules", "limits"}   (resolved, not called)

and writes one JSON reply to file descriptor N (never to stdout, which is the
code's own: whatever it prints is kept as the attempt's printed text)::

    {"output", "names"}  or  {"error": {"type", "message"}}

A python task's code is the workflow's source, never run data: run data reaches it
only as values in the namespace. A custom handler is imported here, from the
import path the engine passes, never in the engine. Values that are not JSON
(NaN and infinities included) are not results. Standard library only.
"""

import errno
import json
import os
import re
import runpy
import sys
import types

# importlib, inspect and traceback are imported where they are needed: a python task that
# succeeds should not pay for them (the child's start is most of a task's cost).

HANDLER = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")
MAX_MESSAGE = 2000


class Refused(Exception):
    """The task's own failure with a chosen error type."""

    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _explain(exc, limits):
    """The message users see for ``exc``; running into a limit says which."""
    message = str(exc)
    if isinstance(exc, MemoryError):
        return message or f"out of memory (a task may use {limits['memory'] >> 20} MiB)"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return f"{message} (a task may write files of at most {limits['file_size'] >> 20} MiB)"
    return message


def _failure(exc, limits, typed):
    """The reply for a failure: by the exception's class name, or (``typed``: a custom handler raising
    infra.tasks.base.TaskFailure, or our own refusal) by the type it names."""
    error_type, message = getattr(exc, "error_type", None), getattr(exc, "message", None)
    if not (typed and isinstance(error_type, str) and error_type and isinstance(message, str)):
        error_type, message = type(exc).__name__, _explain(exc, limits)
        if typed:
            message = message or error_type
    return {"error": {"type": error_type[:200], "message": message[:MAX_MESSAGE]}}


def _json_or_none(value):
    """The value as JSON text, None when it is not JSON (a module, a set...); NaN and infinities raise."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise Refused("InvalidResult", f"the result holds a value JSON cannot carry: {exc}") from None
        return None
    except (TypeError, RecursionError):
        return None


def run_python(request):
    injected = dict(request["namespace"])
    # the deployment's packages, for a task that declares requirements (after the standard library)
    sys.path[:] = [p for p in sys.path if p] + [p for p in request.get("path") or () if p not in sys.path]
    name = re.sub(r"\W", "_", str(request.get("task_id") or "task"))
    script = os.path.join(os.getcwd(), f"task_{name}.py")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(request["code"])
    # The workflow's code runs as a script of this process, seeded with the namespace.
    namespace = runpy.run_path(script, init_globals=injected, run_name="__loopline_task__")
    names, defined = {}, {}
    for key, value in namespace.items():
        if key.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        if key in ("inputs", "variables", "tasks"):
            continue
        if _json_or_none(value) is None:
            continue
        names[key] = value
        if key not in injected or injected[key] is not value:
            defined[key] = value
    return {"output": names["result"] if "result" in names else defined, "names": names}


def _allowed(module, modules):
    """statemachine.limits.module_allowed, written out: this child imports nothing of the project."""
    return any(module == p or module.startswith(p.rstrip(".") + ".") for p in modules or () if p)


def resolve(handler, modules):
    """The callable ``handler`` names ('module:function'), or Refused saying why there is none. The one
    resolution of a custom handler: run_custom calls what it gives, run_resolve (a graph's functions,
    checked when the graph is created) only reports it."""
    import importlib

    match = HANDLER.match(handler)
    if not match:
        raise Refused("CustomHandlerError", f"handler {handler!r} is not of the form 'module:function'")
    module_name, function_name = match.groups()
    if not _allowed(module_name, modules):  # the engine checked it too: only an allowed module is imported
        raise Refused("CustomHandlerError", f"module {module_name!r} is not allowed by this deployment")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module's own code failing at import
        raise Refused("CustomHandlerError", f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    function = getattr(module, function_name, None)
    if function is None:
        raise Refused("CustomHandlerError", f"module {module_name!r} has no {function_name!r}")
    if not callable(function):
        raise Refused("CustomHandlerError", f"{handler!r} is not callable")
    # An allowed module's own functions only, not what it imported: `from subprocess import getoutput`
    # in an allowed module must not make subprocess callable by name.
    home = str(getattr(function, "__module__", None) or "")
    if not _allowed(home, modules):
        raise Refused("CustomHandlerError", f"{handler} is defined in {home or 'no module'!r}, not in an allowed "
                                            "module: name a function the allowed module defines itself")
    return function


def run_resolve(request):
    """Each handler of ``request["handlers"]`` resolved, not called: {handler: None, or why it does not}."""
    sys.path[:] = [p for p in sys.path if p] + [p for p in request["path"] if p not in sys.path]
    found = {}
    for handler in request["handlers"]:
        try:
            resolve(str(handler), request.get("modules"))
            found[handler] = None
        except Refused as exc:
            found[handler] = exc.message
    return {"output": found, "names": {}}


def run_custom(request):
    import inspect

    handler = str(request.get("handler") or "")
    sys.path[:] = [p for p in sys.path if p] + [p for p in request["path"] if p not in sys.path]
    function = resolve(handler, request.get("modules"))
    parameters = request.get("parameters") or {}
    try:
        inspect.signature(function).bind(**parameters)
    except TypeError as exc:
        raise Refused("CustomHandlerError", f"{handler} does not accept these parameters: {exc}") from exc
    except ValueError:
        pass  # no signature to check (some builtins): let the call decide
    value = function(**parameters)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise Refused("CustomHandlerError", f"the return value of {handler} is not JSON-serialisable: {exc}") from exc
    return {"output": json.loads(text), "names": {}}


def main():
    channel = int(sys.argv[1])
    request = json.loads(sys.stdin.read())
    limits = request["limits"]
    custom = request["kind"] in ("custom", "resolve")
    try:
        runs = {"custom": run_custom, "resolve": run_resolve}.get(request["kind"], run_python)
        reply = runs(request)
        text = json.dumps(reply, allow_nan=False)
    except Refused as exc:
        text = json.dumps(_failure(exc, limits, typed=True))
    except BaseException as exc:  # the task's own failure, reported by its type
        import traceback

        traceback.print_exc()  # into the printed text, where the author looks for the line
        text = json.dumps(_failure(exc, limits, typed=custom))
    if len(text) > limits["result"]:
        text = json.dumps({"error": {"type": "OutputTooLarge",
                                     "message": f"the result is larger than {limits['result'] >> 20} MiB"}})
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(channel, "w", encoding="utf-8") as out:
        out.write(text)


main()
