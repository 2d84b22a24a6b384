"""Telling an approver: an email, a text message or a webhook post with the approver's link.

The task types' providers do the sending (infra/tasks), as they do for a workflow's own
email and sms tasks.
"""

from __future__ import annotations

import os
from typing import Any

from ..tasks import http_task, messaging
from ..tasks.common import TaskMeta


def send_notification(channel: str, approver: str, request: dict[str, Any], url: str, reason: str, run_id: str,
                      task_key: str, workflow_id: str, deadline: str | None) -> None:
    """Tell one approver through one channel."""
    title = request.get("title") or "Approval requested"
    lead = {"request": "Your decision is requested", "escalation": "Escalated to you",
            "reminder": "Reminder: your decision is still needed"}.get(reason, "Approval requested")
    text = f"{lead}: {title}\n\n{request.get('description') or ''}\n\nDecide here: {url}\n" + (
        f"Deadline: {deadline}\n" if deadline else "")
    meta = TaskMeta(task_id=task_key, run_id=run_id, workflow_id=workflow_id)
    if channel == "email" and "@" in approver:
        sender = os.environ.get("LOOPLINE_EMAIL_FROM") or "approvals@loopline.local"
        messaging.run_email({"to": [approver], "subject": f"{lead}: {title}", "body": text, "format": "text",
                             "from": sender}, meta)
    elif channel == "sms" and approver.startswith("+"):
        messaging.run_sms({"to": approver, "body": f"{lead}: {title} {url}"}, meta)
    elif channel == "webhook":
        hook = os.environ.get("LOOPLINE_APPROVAL_WEBHOOK_URL")
        if hook:  # a Slack-compatible body: `text`, plus the request for other receivers
            body = {"text": f"{lead}: {title} ({approver}) <{url}|Decide>", "approver": approver, "url": url,
                    "title": title, "reason": reason, "run_id": run_id, "deadline": deadline}
            reply = http_task.fetch("POST", hook, headers={"Content-Type": "application/json"},
                                    data=http_task.encode_body(body, {"Content-Type": "application/json"}))
            if reply.status >= 400:
                raise OSError(f"webhook answered {reply.status}")
