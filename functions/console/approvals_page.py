"""The approvals inbox (GET /console/approvals): every request waiting for a decision
(Engine.pending_approvals, as GET /approvals), one entry per approval with a form to approve or
reject it in the name of one of the approvers yet to decide (actions.py posts it as
POST /runs/{id}/approvals/{task} does, audited in the signed-in user's name).

The links' URLs are not shown: they are each approver's credential, and the console does not need
them to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.engine import Engine

from .actions import decide_form
from .layout import esc, href, page, time_text

REFRESH_MS = 5000


def approvals_page(engine: Engine, params: Mapping[str, str], *, root: str, actor: str) -> str:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in engine.pending_approvals():
        grouped.setdefault((entry["run_id"], entry["task_id"]), []).append(entry)
    items = []
    for (run_id, task_id), entries in grouped.items():
        first = entries[0]
        approvers = sorted({e["approver"] for e in entries})
        items.append(
            f'<li class="approval" data-run="{esc(run_id)}" data-task="{esc(task_id)}">'
            f'<h2>{esc(first["title"])}</h2>'
            f'<p>run <a href="{href(root, "console", "runs", run_id)}">{esc(run_id)}</a>, task '
            f'<a href="{href(root, "console", "runs", run_id, "tasks", task_id)}">{esc(task_id)}</a>; '
            f'waiting for {esc(", ".join(approvers))}; deadline {time_text(first.get("deadline"))}</p>'
            f"{decide_form(engine, actor, first, approvers, root)}</li>")
    listing = f'<ul class="inbox">{"".join(items)}</ul>' if items else \
        '<p class="empty">Nothing waits for a decision.</p>'
    body = f'<h1>Approvals</h1><section id="inbox" data-live="{REFRESH_MS}" data-keep-while-editing>{listing}</section>'
    return page("Approvals", body, root=root, actor=actor, flash=params.get("flash"))
