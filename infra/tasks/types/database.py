"""The ``database`` task type: one SQL statement with bound parameters (infra/tasks/database.py)."""

from __future__ import annotations

from typing import Any

from ..database import Connections, run_database
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> Any:
    # The query as written (before rendering) tells whether SQL was built from data.
    written = call.node.config if isinstance(call.node.config, dict) else {}
    return run_database(call.config, call.meta, call.provider(), written.get("query"))


# The provider of a database task is picked by the connection's URL, not by LOOPLINE_PROVIDERS.
RUNTIME = TaskRuntime(run=run, providers=(
    Provider("url", lambda settings: Connections(settings.databases, settings.egress),
             default_on=("aws", "local")),))
