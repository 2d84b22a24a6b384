"""Custom handlers for tests/component/test_sandbox.py: what a handler's process can see of the engine.

Standard library only, so importing it in a task's process is quick.
"""

from __future__ import annotations

import os
from subprocess import getoutput  # noqa: F401 - imported, not defined here: naming it is refused


def peek(path: str) -> str:
    """The file's text, or the name of the error that stopped the read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("latin-1")
    except OSError as exc:
        return f"refused: {type(exc).__name__}"


def look_around(engine_pid: int, secret_file: str = "") -> dict:
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "environ": dict(os.environ),
        "engine_environ": peek(f"/proc/{engine_pid}/environ"),
        "parent_environ": peek(f"/proc/{os.getppid()}/environ"),
        "secret": peek(secret_file) if secret_file else "",
    }


def chatty(lines: int = 1) -> str:
    for i in range(lines):
        print(f"line {i}")
    return "done"
