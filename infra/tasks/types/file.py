"""The ``file`` task type: read, write, copy, move, delete, list and exists inside the file root (files.py)."""

from __future__ import annotations

from typing import Any

from .. import common, files
from ..base import TaskFailure
from ..common import INVALID_CONFIG
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> dict[str, Any]:
    action = (common.text(call.config, "action", required=True) or "").lower()
    if action not in files.ACTIONS:
        raise TaskFailure(INVALID_CONFIG,
                          f"'config.action' must be one of {', '.join(files.ACTIONS)}, not {action!r}")
    store: files.FileStore = call.provider()
    return store.run(action, call.config)


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("local", lambda settings: files.RootedFiles(files.root(settings.file_root)),
             default_on=("aws", "local")),))
