"""Running one :class:`CodeRequest` on this machine, outside the engine's trust boundary (docs/security.md).

``run_code`` starts the supervisor (``supervisor.py``: our own program, with an
empty environment, in a session of its own), which starts the task's process as
the task user (``identity.py``) with resource limits, waits for it, and kills
everything it started. The task's process gets only what the workflow passes:
a fixed PATH, HOME and TMPDIR in a private directory made for this attempt (and
removed after it), a shell task's ``config.environment``; its stdin is the
request; what it prints goes to files the engine reads afterwards; a python or
custom task's result comes back on a channel of its own (a file descriptor that
is neither stdout nor stderr), so ``print()`` is just printed text.

The task's own failures come back as ``CodeReply.error`` with the types users
match on; ``run_code`` does not raise for them.
"""

from __future__ import annotations

import ctypes
import json
import marshal
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from statemachine.limits import module_allowed

from ..tasks import files, shell_task
from ..tasks.base import TaskFailure
from ..tasks.common import INVALID_CONFIG, excerpt
from .identity import CONFIG_ERROR, TaskIdentity, can_read_dir, give_to, import_path, task_identity, task_python
from .request import MAX_PRINTED, CodeReply, CodeRequest
from .settings import SandboxSettings

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
MEMORY_LIMIT = 1 << 30  # bytes of address space
FILE_SIZE_LIMIT = 64 << 20  # bytes in any one file the task writes (its printed text included)
OPEN_FILES_LIMIT = 1024
PROCESS_LIMIT = 256  # processes of the task user, only when it is a user of its own
MAX_RESULT = 50 << 20  # bytes of a python or custom result
PR_SET_DUMPABLE = 4
SUPERVISOR_GRACE = 30.0  # seconds for the supervisor to start, clean up and answer, beyond the timeout

HANDLER_ERROR = "CustomHandlerError"
_HANDLER = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")
_SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
# Passed with -c, so the task user needs no access to the engine's files to run it.
_CHILD = Path(__file__).with_name("child.py").read_text()
_undumpable = False


def run_code(request: CodeRequest, settings: SandboxSettings) -> CodeReply:
    """Run one attempt of python, shell or custom code; its failures come back in the reply."""
    try:
        identity = task_identity(settings.task_user)
        if not identity.switches:
            _make_engine_undumpable()
        if request.kind == "custom":
            _check_handler(request)
        workdir = tempfile.mkdtemp(prefix="loopline-task-")
        try:
            give_to(workdir, identity)
            if request.kind == "shell":
                return _run_shell(request, identity, workdir, settings.file_root)
            return _run_python(request, identity, workdir, settings.task_python, settings.python_packages)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    except TaskFailure as exc:
        return CodeReply(error=exc.as_error())
    except OSError as exc:  # this machine's trouble (a full /tmp, no fds left), not the task's
        return _reply_error("TaskProviderError", f"cannot run the task's code: {exc}")


# ---------------------------------------------------------------- python and custom


def _check_handler(request: CodeRequest) -> None:
    """Deny by default: only a module the deployment allows is ever imported, and only in the task's process."""
    handler = request.config.get("handler")
    if not isinstance(handler, str) or not handler:
        raise TaskFailure(INVALID_CONFIG, "'config.handler' is required ('module:function')")
    match = _HANDLER.match(handler)
    if not match:
        raise TaskFailure(HANDLER_ERROR, f"handler {handler!r} is not of the form 'module:function'")
    if not module_allowed(match.group(1), request.custom_modules):
        allowed = ", ".join(request.custom_modules) or "none: it is not set"
        raise TaskFailure(HANDLER_ERROR, f"module {match.group(1)!r} is not allowed; custom handlers must come from "
                                         f"a module named in LOOPLINE_CUSTOM_MODULES (now {allowed})")
    if not isinstance(request.config.get("parameters") or {}, dict):
        raise TaskFailure(INVALID_CONFIG, "'config.parameters' must be an object (passed as keyword arguments)")


def _packages_path(packages: str | None, identity: TaskIdentity) -> list[str]:
    """The deployment's package directory, for a python task that declares requirements."""
    if not packages:
        raise TaskFailure(CONFIG_ERROR, "this task declares requirements and this deployment provides no packages "
                                        "(LOOPLINE_PYTHON_PACKAGES is not set)")
    real = os.path.realpath(packages)
    if not os.path.isdir(real) or not can_read_dir(real, identity):
        raise TaskFailure(CONFIG_ERROR, f"LOOPLINE_PYTHON_PACKAGES {packages!r} is not a directory the task user "
                                        f"{identity.name} can read")
    return [real]


def _run_python(request: CodeRequest, identity: TaskIdentity, workdir: str, python: str,
                packages: str | None = None) -> CodeReply:
    custom = request.kind == "custom"
    limits = {"memory": MEMORY_LIMIT, "file_size": FILE_SIZE_LIMIT, "result": MAX_RESULT}
    if custom:
        body = {"kind": "custom", "handler": request.config["handler"], "limits": limits,
                "parameters": request.config.get("parameters") or {}, "path": import_path(identity),
                "modules": list(request.custom_modules)}
    else:
        body = {"kind": "python", "task_id": request.task_id, "code": str(request.config.get("code") or ""),
                "namespace": request.namespace, "limits": limits,
                "path": _packages_path(packages, identity) if request.config.get("packages") else []}
    with _temp() as stdin, _temp() as printed, _temp() as result:
        stdin.write(json.dumps(body, allow_nan=False).encode())
        stdin.flush()
        stdin.seek(0)
        argv = [task_python(identity, python), "-I", "-S", "-B", "-u", "-c", _CHILD, str(result.fileno())]
        report = _supervise(request, identity, argv, _base_env(workdir), workdir, False,
                            {"stdin": stdin.fileno(), "stdout": printed.fileno(), "stderr": printed.fileno(),
                             "result": result.fileno()})
        text = _tail(printed, MAX_PRINTED)
        answer = _read_result(result)
    what = f"{request.config.get('handler')} " if custom else ""
    if report.get("start_error"):
        failure = report["start_error"]
        return _reply_error("TaskProviderError", f"cannot start the task's Python: {failure['message']}", text)
    if report["timed_out"]:
        return _reply_error("TaskTimeout", f"{what}ran longer than {request.timeout:g}s", text)
    if report["exit"] == -signal.SIGXCPU:
        return _reply_error("TaskTimeout", f"{what}used more than {_cpu_seconds(request)}s of CPU time", text)
    if answer is None:
        detail = excerpt(text, 500, tail=True)
        message = f"exit code {report['exit']}" + (f": {detail}" if detail else "")
        if custom:
            return _reply_error(HANDLER_ERROR, f"{what}ended without a result ({message})", text)
        return _reply_error("PythonTaskCrashed", message, text)
    if "error" in answer:
        return CodeReply(error=answer["error"], printed=text)
    return CodeReply(output=answer["output"], names=answer["names"], printed=text)


def _read_result(handle: IO[bytes]) -> dict[str, Any] | None:
    """The child's reply, or None when there is none it could have written (a crash, an exit mid-way)."""
    size = handle.seek(0, os.SEEK_END)
    if size > MAX_RESULT + 4096:
        return {"error": {"type": "OutputTooLarge", "message": f"the result is larger than {MAX_RESULT >> 20} MiB"}}
    handle.seek(0)
    try:
        answer = json.loads(handle.read().decode("utf-8"), parse_constant=_no_constant)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    error = answer.get("error")
    if error is not None:
        if not (isinstance(error, dict) and isinstance(error.get("type"), str) and error["type"]):
            return None
        return {"error": {"type": error["type"][:200], "message": str(error.get("message", ""))[:2000]}}
    if "output" not in answer or not isinstance(answer.get("names"), dict):
        return None
    return answer


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _reply_error(error_type: str, message: str, printed: str = "") -> CodeReply:
    return CodeReply(error={"type": error_type, "message": message}, printed=printed)


# ---------------------------------------------------------------- shell


def _run_shell(request: CodeRequest, identity: TaskIdentity, workdir: str, file_root: str | None) -> CodeReply:
    config = request.config
    argv = config.get("command")
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) and argv[0]):
        raise TaskFailure(INVALID_CONFIG, "'config.command' must be a non-empty list of arguments")
    cwd, as_task = _working_dir(config.get("working_dir"), identity, file_root)
    env = _base_env(workdir)
    env.update(request.environment)
    for name in config.get("unset_environment") or ():
        env.pop(name, None)
    capture = config.get("capture_output", True) is not False
    with _temp() as out, _temp() as err, open(os.devnull, "rb+") as null:
        report = _supervise(request, identity, argv, env, cwd, as_task,
                            {"stdin": null.fileno(), "stdout": (out if capture else null).fileno(),
                             "stderr": (err if capture else null).fileno(), "result": None})
        stdout = shell_task.read_stream(out, keep_tail=False) if capture else ""
        stderr = shell_task.read_stream(err, keep_tail=True) if capture else ""
    failure = report.get("start_error")
    if failure:
        if failure["where"] in ("cwd", "setup"):
            raise TaskFailure(INVALID_CONFIG, f"'config.working_dir' {cwd!r} cannot be entered: {failure['message']}")
        if failure["errno"] == 2:
            return _reply_error("ShellError", f"exit code 127: command not found: {argv[0]}")
        if failure["errno"] == 13:
            return _reply_error("ShellError", f"exit code 126: permission denied: {argv[0]}")
        return _reply_error("ShellError", f"cannot run {argv[0]}: {failure['message']}")
    if report["timed_out"]:
        return _reply_error("TaskTimeout", f"{argv[0]} ran longer than {request.timeout:g}s")
    code = report["exit"]
    if code == -signal.SIGXCPU:
        return _reply_error("TaskTimeout", f"{argv[0]} used more than {_cpu_seconds(request)}s of CPU time")
    if code != 0:
        return _reply_error("ShellError", shell_task.failure_message(code, stdout, stderr, FILE_SIZE_LIMIT))
    return CodeReply(output={"exit_code": code, "stdout": stdout, "stderr": stderr})


def _working_dir(configured: Any, identity: TaskIdentity, configured_root: str | None) -> tuple[str, bool]:
    """The directory a shell task starts in, and whether the task user must enter it on its own.

    The file root (the default) and the directories inside it are entered for the task: the
    deployment chose that place for workflows' files. Any other absolute path is entered with the
    task user's own permissions, so naming a directory cannot reach what the user could not."""
    root = files.root(configured_root)
    if configured is not None and not isinstance(configured, str):
        raise TaskFailure(INVALID_CONFIG, "'config.working_dir' must be a string")
    if configured and os.path.isabs(configured):
        real = os.path.realpath(configured)
        if not os.path.isdir(real):
            raise TaskFailure(INVALID_CONFIG, f"'config.working_dir' {configured!r} is not a directory")
        inside = real == str(root) or real.startswith(str(root).rstrip(os.sep) + os.sep)
        if not inside and not can_read_dir(real, identity):
            raise TaskFailure(INVALID_CONFIG, f"'config.working_dir' {configured!r} is not a directory the task "
                                              f"user {identity.name} can enter")
        return real, not inside
    path = files.resolve(configured or ".", "working_dir", root)
    if not path.is_dir():
        raise TaskFailure(INVALID_CONFIG, f"'config.working_dir' {str(path)!r} is not a directory")
    if path == root and not configured_root:
        # The default root is loopline's own: shell tasks may write there. Handed over by its own
        # name, not the resolved one, so a symlink planted in the temp dir hands over nothing.
        give_to(files.default_root(), identity)
    return str(path), False


# ---------------------------------------------------------------- the supervisor


def _supervise(request: CodeRequest, identity: TaskIdentity, argv: list[str], env: dict[str, str], cwd: str,
               enter_as_task: bool, fds: dict[str, int | None]) -> dict[str, Any]:
    plan = {"argv": argv, "env": env, "cwd": cwd, "enter_as_task": enter_as_task, "uid": identity.uid,
            "gid": identity.gid, "limits": _limits(request, identity), "timeout": request.timeout, "fds": fds}
    passed = tuple(fd for fd in fds.values() if fd is not None)
    process = subprocess.Popen([sys.executable, "-I", "-S", "-B", _SUPERVISOR], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, pass_fds=passed,
                               close_fds=True, start_new_session=True)
    try:
        out, err = process.communicate(marshal.dumps(plan), timeout=request.timeout + SUPERVISOR_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise TaskFailure("TaskProviderError", "the task's supervisor did not answer") from None
    try:
        report = marshal.loads(out)  # from our own supervisor, the same interpreter: never from the task
    except (ValueError, EOFError, TypeError):
        raise TaskFailure("TaskProviderError", "the task's supervisor failed (exit code "
                                               f"{process.returncode}): {excerpt(err, 500, tail=True)}") from None
    if not isinstance(report, dict):
        raise TaskFailure("TaskProviderError", "the task's supervisor answered nonsense")
    return report


def _cpu_seconds(request: CodeRequest) -> int:
    return math.ceil(request.timeout) + 1


def _limits(request: CodeRequest, identity: TaskIdentity) -> dict[str, int]:
    wanted = {"RLIMIT_CPU": _cpu_seconds(request), "RLIMIT_AS": MEMORY_LIMIT, "RLIMIT_FSIZE": FILE_SIZE_LIMIT,
              "RLIMIT_NOFILE": OPEN_FILES_LIMIT, "RLIMIT_CORE": 0}
    if identity.switches:
        # Counted per user: only meaningful when the task user is not the engine's own.
        wanted["RLIMIT_NPROC"] = PROCESS_LIMIT
    limits = {}
    for name, value in wanted.items():
        hard = resource.getrlimit(getattr(resource, name))[1]
        limits[name] = value if hard == resource.RLIM_INFINITY else min(value, hard)
    return limits


def _base_env(workdir: str) -> dict[str, str]:
    return {"PATH": SAFE_PATH, "HOME": workdir, "TMPDIR": workdir}


def _temp() -> IO[bytes]:
    return tempfile.TemporaryFile()  # unlinked: reachable only through the descriptor it is passed as


def _tail(handle: IO[bytes], limit: int) -> str:
    size = handle.seek(0, os.SEEK_END)
    marker = ""
    if size > limit:
        marker = f"[... {size - limit} bytes cut]\n"
    keep = limit - len(marker)
    handle.seek(max(size - keep, 0))
    return marker + handle.read().decode("utf-8", errors="replace")[-keep:]


def _make_engine_undumpable() -> None:
    """Without a user switch the task runs as the engine's user, who may read a dumpable process's
    /proc/<pid>/environ and memory: make the engine non-dumpable, once."""
    global _undumpable
    if _undumpable:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        reason = os.strerror(ctypes.get_errno())
        raise TaskFailure("TaskProviderError", f"cannot make the engine non-dumpable: {reason}")
    _undumpable = True
