"""The ``sms`` task type: ``sns`` (Amazon SNS Publish; default on aws) or ``local`` (the outbox; default locally)."""

from __future__ import annotations

from typing import Any

from ..messaging import LocalSms, SnsSms, run_sms
from ..runtime import Provider, TaskCall, TaskRuntime


def run(call: TaskCall) -> dict[str, Any]:
    return run_sms(call.config, call.meta, call.provider())


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("sns", lambda settings: SnsSms(settings.aws, settings.messaging.sms_enabled), default_on=("aws",)),
    Provider("local", lambda settings: LocalSms(), default_on=("local",)),
))
