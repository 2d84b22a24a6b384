"""The ``python`` task type: the workflow's code in a sandboxed child interpreter."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from .base import TaskFailure, TaskResult

_RUNNER = (Path(__file__).parent / "python_sandbox.py").read_text()
DEFAULT_TIMEOUT = 300.0
MEMORY_LIMIT = 1 << 30  # bytes of address space for the child
MAX_OUTPUT = 50 * 1024 * 1024


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_python(task_id: str, code: str, namespace: dict[str, Any], timeout: float | None) -> TaskResult:
    request = json.dumps({"code": code, "namespace": namespace, "filename": f"task_{task_id}"})
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _RUNNER],
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout or DEFAULT_TIMEOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            preexec_fn=_limit_child,
        )
    except subprocess.TimeoutExpired as exc:
        raise TaskFailure("TaskTimeout", f"ran longer than {timeout or DEFAULT_TIMEOUT:g}s") from exc
    if len(done.stdout) > MAX_OUTPUT:
        raise TaskFailure("OutputTooLarge", f"produced more than {MAX_OUTPUT} bytes")
    try:
        reply = json.loads(done.stdout)
    except ValueError as exc:
        tail = done.stderr.strip()[-500:]
        raise TaskFailure("PythonTaskCrashed", f"exit code {done.returncode}: {tail}") from exc
    if "error" in reply:
        raise TaskFailure(reply["error"]["type"], reply["error"]["message"])
    return TaskResult(output=reply["result"], names=reply["names"])
