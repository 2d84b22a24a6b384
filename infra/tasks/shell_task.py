"""The ``shell`` task type: one program run with an argument list, never through a shell.

``config.command`` is a list of arguments (a string is split with
:func:`shlex.split`, so quoting works but ``;``, ``|``, ``$(...)`` and
globs are plain characters). A value rendered from run data is one argument
however it is written, so ``; rm -rf /`` arrives as the literal text. To use
shell syntax on purpose, write it in the workflow: ``["sh", "-c", "a | b"]``
and pass data as further arguments (``"$1"`` inside the script).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

from . import common, files, settings
from .base import TaskFailure
from .common import INVALID_CONFIG, TaskMeta

DEFAULT_TIMEOUT = 300.0
MAX_OUTPUT_BYTES = 256 * 1024  # per stream; more is cut and marked
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class CommandRunner(Protocol):
    def run(self, argv: list[str], cwd: str, env: dict[str, str], timeout: float,
            capture: bool) -> dict[str, Any]: ...


def _read(handle, keep_tail: bool) -> str:
    size = handle.seek(0, os.SEEK_END)
    if size <= MAX_OUTPUT_BYTES:
        handle.seek(0)
        data = handle.read()
        marker = ""
    elif keep_tail:
        handle.seek(size - MAX_OUTPUT_BYTES)
        data = handle.read()
        marker = f"[... {size - MAX_OUTPUT_BYTES} bytes cut]\n"
    else:
        handle.seek(0)
        data = handle.read(MAX_OUTPUT_BYTES)
        marker = None
    text = data.decode("utf-8", errors="replace")
    if marker is None:
        return text + f"\n[... {size - MAX_OUTPUT_BYTES} bytes cut]"
    return marker + text


def _strip_newlines(text: str) -> str:
    # As shell command substitution does: `echo hi` gives "hi".
    return text.rstrip("\r\n")


class SubprocessRunner:
    def run(self, argv: list[str], cwd: str, env: dict[str, str], timeout: float,
            capture: bool) -> dict[str, Any]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                process = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=out if capture else subprocess.DEVNULL,
                    stderr=err if capture else subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, so a timeout kills its children too
                )
            except FileNotFoundError as exc:
                raise TaskFailure("ShellError", f"exit code 127: command not found: {argv[0]}") from exc
            except PermissionError as exc:
                raise TaskFailure("ShellError", f"exit code 126: permission denied: {argv[0]}") from exc
            except OSError as exc:
                raise TaskFailure("ShellError", f"cannot run {argv[0]}: {exc}") from exc
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                _kill(process)
                raise TaskFailure("TaskTimeout", f"{argv[0]} ran longer than {timeout:g}s") from exc
            finally:
                if process.poll() is None:
                    _kill(process)
            stdout = _strip_newlines(_read(out, keep_tail=False)) if capture else ""
            stderr = _strip_newlines(_read(err, keep_tail=True)) if capture else ""
        return {"exit_code": code, "stdout": stdout, "stderr": stderr}


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


settings.register("shell", "subprocess", SubprocessRunner, aws_default=True, local_default=True)


def command_argv(config: dict[str, Any]) -> list[str]:
    command = config.get("command")
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise TaskFailure(INVALID_CONFIG, f"'config.command': {exc}") from exc
    elif isinstance(command, list):
        argv = []
        for item in command:
            if isinstance(item, (dict, list)) or item is None:
                raise TaskFailure(INVALID_CONFIG, "'config.command' items must be strings or numbers")
            argv.append(common.text({"v": item}, "v") or "")
    else:
        raise TaskFailure(INVALID_CONFIG, "'config.command' is required: a list of arguments or a string")
    if not argv or not argv[0]:
        raise TaskFailure(INVALID_CONFIG, "'config.command' is empty")
    if any("\0" in arg for arg in argv):
        raise TaskFailure(INVALID_CONFIG, "'config.command' arguments cannot contain NUL characters")
    return argv


def run_shell(config: dict[str, Any], meta: TaskMeta) -> dict[str, Any]:
    argv = command_argv(config)
    root = files.root()
    working_dir = common.text(config, "working_dir")
    cwd = Path(working_dir) if working_dir and os.path.isabs(working_dir) else root / (working_dir or "")
    if not cwd.is_dir():
        raise TaskFailure(INVALID_CONFIG, f"'config.working_dir' {str(cwd)!r} is not a directory")
    env = {"PATH": os.environ.get("PATH") or DEFAULT_PATH}
    for name, value in common.mapping(config, "environment").items():
        if value is None:
            env.pop(str(name), None)
        elif isinstance(value, (dict, list)):
            raise TaskFailure(INVALID_CONFIG, f"'config.environment.{name}' must be a string")
        else:
            env[str(name)] = common.text({"v": value}, "v") or ""
    wait = common.timeout(config, meta, DEFAULT_TIMEOUT)
    runner: CommandRunner = settings.create("shell")
    result = runner.run(argv, str(cwd), env, wait, common.flag(config, "capture_output", True))
    if result["exit_code"] != 0:
        detail = common.excerpt(result["stderr"] or result["stdout"] or "", 500, tail=True)
        raise TaskFailure("ShellError", f"exit code {result['exit_code']}" + (f": {detail}" if detail else ""))
    return result
