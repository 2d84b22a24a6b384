"""What the sandbox takes from the deployment: where files live, whom task code runs as, with which Python.

Read once where the process is wired (the task runner's handler, local mode, the
``code`` provider from the task types' settings) and passed to :func:`run_code`;
the sandbox itself never reads the environment, so what a task runs with is what
its caller decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TASK_USER = "nobody"


@dataclass(frozen=True)
class SandboxSettings:
    file_root: str | None = None  # LOOPLINE_FILE_ROOT; None: the default root (infra/tasks/files.py)
    task_user: str = DEFAULT_TASK_USER  # LOOPLINE_TASK_USER: whom task code runs as when the engine is root
    task_python: str = ""  # LOOPLINE_TASK_PYTHON; empty: found as identity.task_python says
    # LOOPLINE_PYTHON_PACKAGES: a directory of installed distributions (`pip install --target DIR ...`, or a
    # Lambda layer's /opt/python) that python tasks declaring `requirements` import from; None: none.
    python_packages: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SandboxSettings:
        """From a process environment (the wiring passes ``os.environ``)."""
        return cls(file_root=env.get("LOOPLINE_FILE_ROOT") or None,
                   task_user=(env.get("LOOPLINE_TASK_USER") or DEFAULT_TASK_USER).strip(),
                   task_python=env.get("LOOPLINE_TASK_PYTHON") or "",
                   python_packages=env.get("LOOPLINE_PYTHON_PACKAGES") or None)
