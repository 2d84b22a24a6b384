"""The ``voice`` task type: ``webhook`` (POSTs to the deployment's bridge; default on aws) or ``local`` (the outbox).
SNS cannot place calls."""

from __future__ import annotations

from typing import Any

from ..messaging import LocalVoice, WebhookVoice, run_voice
from ..runtime import Provider, TaskCall, TaskRuntime
from ..settings import TaskSettings


def _webhook(settings: TaskSettings) -> WebhookVoice:
    return WebhookVoice(settings.messaging.voice_webhook_url, settings.messaging.voice_webhook_token,
                        settings.egress())


def run(call: TaskCall) -> dict[str, Any]:
    return run_voice(call.config, call.meta, call.provider())


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("webhook", _webhook, default_on=("aws",)),
    Provider("local", lambda settings: LocalVoice(), default_on=("local",)),
))
