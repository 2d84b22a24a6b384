"""Whether custom handlers resolve to callables, checked before anything runs them (a graph's functions,
docs/graph-form.md): the task runner's own resolution (child.py's ``resolve``), in the same kind of
process, never in the engine's.

Importing a module runs its import-time code, so the engine (the API, the CLI) imports none: the
handlers go to one child process started as a task's is (the task user, an empty environment, the
resource limits, the import path as far as the task user can read it), which imports each module,
looks the name up and answers, calling nothing. Only a module the deployment allows is ever sent
(and the child refuses any other again).
"""

from __future__ import annotations

import json
import shutil
import tempfile

from statemachine.limits import module_allowed

from ..tasks.base import TaskFailure
from .identity import import_path, task_identity, task_python
from .launch import (
    _CHILD,
    _HANDLER,
    FILE_SIZE_LIMIT,
    MAX_RESULT,
    MEMORY_LIMIT,
    _base_env,
    _make_engine_undumpable,
    _read_result,
    _supervise,
    _tail,
    _temp,
    give_to,
)
from .request import MAX_PRINTED, CodeRequest
from .settings import SandboxSettings

# Seconds for one child to import every module named: import-time code that takes longer is a problem
# of its own, said as such.
RESOLVE_TIMEOUT = 30.0


class ResolveError(Exception):
    """The check itself could not be made (the child did not start or answer): not the handlers' fault."""


def unresolved(handlers: list[str], custom_modules: tuple[str, ...], settings: SandboxSettings) -> dict[str, str]:
    """``{handler: why it names no callable}`` for each of ``handlers`` that does not resolve (empty: all do).
    A handler the deployment does not allow, or not of the form 'module:function', is reported without
    importing anything."""
    found: dict[str, str] = {}
    asked = []
    for handler in dict.fromkeys(handlers):
        match = _HANDLER.match(handler)
        if not match:
            found[handler] = f"handler {handler!r} is not of the form 'module:function'"
        elif not module_allowed(match.group(1), custom_modules):
            found[handler] = f"module {match.group(1)!r} is not allowed by this deployment"
        else:
            asked.append(handler)
    if asked:
        found.update({h: why for h, why in _ask_child(asked, custom_modules, settings).items() if why})
    return found


def _ask_child(handlers: list[str], custom_modules: tuple[str, ...], settings: SandboxSettings) -> dict[str, str]:
    request = CodeRequest(kind="custom", task_id="resolve", run_id="", config={}, timeout=RESOLVE_TIMEOUT,
                          custom_modules=custom_modules)
    workdir = tempfile.mkdtemp(prefix="loopline-resolve-")
    try:
        identity = task_identity(settings.task_user)
        if not identity.switches:
            _make_engine_undumpable()  # as run_code: a child of the engine's own user must not read its memory
        give_to(workdir, identity)
        body = {"kind": "resolve", "handlers": handlers, "path": import_path(identity),
                "modules": list(custom_modules),
                "limits": {"memory": MEMORY_LIMIT, "file_size": FILE_SIZE_LIMIT, "result": MAX_RESULT}}
        with _temp() as stdin, _temp() as printed, _temp() as result:
            stdin.write(json.dumps(body).encode())
            stdin.flush()
            stdin.seek(0)
            argv = [task_python(identity, settings.task_python), "-I", "-S", "-B", "-u", "-c", _CHILD,
                    str(result.fileno())]
            report = _supervise(request, identity, argv, _base_env(workdir), workdir, False,
                                {"stdin": stdin.fileno(), "stdout": printed.fileno(), "stderr": printed.fileno(),
                                 "result": result.fileno()})
            text = _tail(printed, MAX_PRINTED)
            answer = _read_result(result)
    except TaskFailure as exc:
        raise ResolveError(exc.message) from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if report.get("start_error"):
        raise ResolveError(f"cannot start the task's Python: {report['start_error']['message']}")
    if report.get("timed_out"):
        return {h: f"importing the modules took longer than {RESOLVE_TIMEOUT:g}s" for h in handlers}
    output = answer.get("output") if isinstance(answer, dict) else None
    if not isinstance(output, dict):
        error = (answer or {}).get("error") or {}
        raise ResolveError(f"the check answered no result (exit code {report.get('exit')}): "
                           f"{error.get('message') or text[-500:]}")
    return {h: str(output[h]) for h in handlers if output.get(h) is not None}
