"""Telling an approver: an email, a text message or a webhook post with the approver's link, or a voice call
saying what waits (a call cannot carry a link).

The task types' providers do the sending, with the deployment's settings (``TaskTypes``), as
they do for a workflow's own email and sms tasks; the webhook post goes through the same egress
rule as an http task.
"""

from __future__ import annotations

from datetime import datetime

from statemachine.state import ApprovalRequest

from ..tasks import http_task
from ..tasks.common import TaskMeta
from ..tasks.registry import TaskTypes


def send_notification(channel: str, approver: str, request: ApprovalRequest, url: str, reason: str, run_id: str,
                      task_key: str, workflow_id: str, deadline: str | None, task_types: TaskTypes,
                      at: datetime | None = None) -> None:
    """Tell one approver through one channel; ``at``: the engine clock's time now."""
    title = request.get("title") or "Approval requested"
    lead = {"request": "Your decision is requested", "escalation": "Escalated to you",
            "reminder": "Reminder: your decision is still needed"}.get(reason, "Approval requested")
    text = f"{lead}: {title}\n\n{request.get('description') or ''}\n\nDecide here: {url}\n" + (
        f"Deadline: {deadline}\n" if deadline else "")
    meta = TaskMeta(task_id=task_key, run_id=run_id, workflow_id=workflow_id, at=at)
    messaging = task_types.settings.messaging
    if channel == "email" and "@" in approver:
        sender = messaging.email_from or "approvals@loopline.local"
        task_types.run_config("email", {"to": [approver], "subject": f"{lead}: {title}", "body": text,
                                        "format": "text", "from": sender}, meta)
    elif channel == "sms" and approver.startswith("+"):
        task_types.run_config("sms", {"to": approver, "body": f"{lead}: {title} {url}"}, meta)
    elif channel == "voice" and approver.startswith("+"):
        # A call cannot carry a link: it says what waits and where the link went (the other channels').
        others = [c for c in request.get("channels") or () if c != "voice"]
        where = f"The link to decide was sent by {' and by '.join(others)}." if others else \
            "Decide in the loopline console or ask whoever runs this workflow for your link."
        description = (request.get("description") or "")[:300]
        task_types.run_config("voice", {"to": approver, "message": " ".join(part for part in (
            f"{lead}: {title}.", description, f"Deadline: {deadline}." if deadline else "", where) if part)}, meta)
    elif channel == "webhook" and messaging.approval_webhook_url:
        # a Slack-compatible body: `text`, plus the request for other receivers
        body = {"text": f"{lead}: {title} ({approver}) <{url}|Decide>", "approver": approver, "url": url,
                "title": title, "reason": reason, "run_id": run_id, "deadline": deadline}
        reply = http_task.fetch("POST", messaging.approval_webhook_url, policy=task_types.settings.egress(),
                                headers={"Content-Type": "application/json"},
                                data=http_task.encode_body(body, {"Content-Type": "application/json"}))
        if reply.status >= 400:
            raise OSError(f"webhook answered {reply.status}")
