"""The ``email`` task type: ``ses`` (Amazon SES; default on aws) or ``local`` (the outbox; default locally)."""

from __future__ import annotations

from typing import Any

from .. import files
from ..messaging import LocalEmail, SesEmail, run_email
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> dict[str, Any]:
    return run_email(call.config, call.meta, call.provider(), call.settings.messaging.email_from)


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("ses", lambda settings: SesEmail(settings.aws, files.root(settings.file_root)), default_on=("aws",)),
    Provider("local", lambda settings: LocalEmail(files.root(settings.file_root)), default_on=("local",)),
))
