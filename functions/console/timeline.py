"""The run page's timeline: one row per task that ran, its time queued and each attempt as horizontal
bars on the run's time scale (plain HTML, each bar placed by a percentage in a style attribute).

It draws the run view's ``timing`` (infra/engine/timing.py): ``queued_at``, ``started_at``,
``ended_at`` and the ``attempt_log`` of the attempts that ended (the last ten a task keeps). An
attempt still going is drawn up to now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from infra.clock import parse_iso

from .layout import duration_text, esc, time_text


def timeline(view: Mapping[str, Any], now: datetime) -> str:
    start = parse_iso(view["created_at"])
    end = parse_iso(view["ended_at"]) if view.get("ended_at") else now
    span = max((end - start).total_seconds(), 0.001)

    def place(a: str | None, b: str | None) -> str:
        left = (parse_iso(a) - start).total_seconds() / span * 100 if a else 0.0
        right = (parse_iso(b) - start).total_seconds() / span * 100 if b else 100.0
        left, right = min(max(left, 0.0), 100.0), min(max(right, 0.0), 100.0)
        return f"left:{left:.2f}%;width:{max(right - left, 0.4):.2f}%"

    rows = []
    for task_id, times in view["timing"].items():
        if not times.get("started_at"):
            continue  # never ran: nothing to draw
        bars = []
        if times.get("queued_at"):
            bars.append(f'<span class="bar queued" style="{place(times["queued_at"], times["started_at"])}" '
                        f'title="queued {esc(times["queued_at"])}"></span>')
        log = times.get("attempt_log") or []
        for entry in log:
            failed = bool(entry.get("error"))
            tip = f"attempt {entry.get('attempt')}: {entry.get('started_at')} → {entry.get('ended_at')}"
            if failed:
                tip += f" — {(entry['error'] or {}).get('type')}: {(entry['error'] or {}).get('message')}"
            bars.append(f'<span class="bar attempt{" failed" if failed else ""}" '
                        f'data-attempt="{esc(entry.get("attempt"))}" '
                        f'style="{place(entry.get("started_at"), entry.get("ended_at"))}" title="{esc(tip)}"></span>')
        status = view["tasks"][task_id]["status"]
        if not times.get("ended_at") and status in ("RUNNING", "WAITING", "RETRYING"):
            since = (log[-1].get("ended_at") if log and status == "RETRYING" else None) or times["started_at"]
            bars.append(f'<span class="bar open" style="{place(since, None)}" '
                        f'title="{esc(status)} since {esc(since)}"></span>')
        elif not log:
            bars.append(f'<span class="bar attempt" style="{place(times["started_at"], times.get("ended_at"))}" '
                        f'title="{esc(times["started_at"])} → {esc(times.get("ended_at"))}"></span>')
        rows.append(f'<div class="tl-row" data-task="{esc(task_id)}" data-status="{esc(status)}">'
                    f'<span class="tl-label">{esc(task_id)}</span><span class="tl-track">{"".join(bars)}</span>'
                    f'<span class="tl-time">{duration_text(times.get("duration_ms"))}</span></div>')
    if not rows:
        return '<p class="empty">No task has started yet.</p>'
    scale = (f'<div class="tl-scale"><span>{time_text(view["created_at"])}</span>'
             f'<span>{time_text(view.get("ended_at")) if view.get("ended_at") else "now"}</span></div>')
    return f'<div class="timeline">{"".join(rows)}{scale}</div>'
