"""The run page's timeline (functions/console/timeline.py): bars placed on the run's time scale from the
run view's ``timing``, a failed attempt marked, an attempt still going drawn up to now."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from functions.console.timeline import timeline

NOW = datetime(2030, 1, 1, 0, 1, 40, tzinfo=timezone.utc)  # 100 s after the run started


def _view(**timing) -> dict:
    tasks = {task: {"status": t.pop("status")} for task, t in timing.items()}
    return {"created_at": "2030-01-01T00:00:00.000Z", "ended_at": None, "tasks": tasks,
            "timing": {task: {"queued_at": None, "started_at": None, "ended_at": None, "duration_ms": None,
                              "attempt_log": [], **t} for task, t in timing.items()}}


def _bars(html: str, task: str) -> list[tuple[str, float, float]]:
    row = html.split(f'data-task="{task}"')[1].split('class="tl-time"')[0]
    return [(kind, float(left), float(width)) for kind, left, width in
            re.findall(r'class="bar ([a-z ]+)"[^>]*?style="left:([\d.]+)%;width:([\d.]+)%"', row)]


def test_attempts_are_placed_on_the_runs_scale_and_a_failed_one_is_marked():
    view = _view(a={"status": "COMPLETED", "queued_at": "2030-01-01T00:00:00.000Z",
                    "started_at": "2030-01-01T00:00:10.000Z", "ended_at": "2030-01-01T00:00:50.000Z",
                    "attempt_log": [
                        {"attempt": 1, "started_at": "2030-01-01T00:00:10.000Z", "ended_at": "2030-01-01T00:00:20.000Z",
                         "error": {"type": "Boom", "message": "<b>no</b>"}},
                        {"attempt": 2, "started_at": "2030-01-01T00:00:30.000Z", "ended_at": "2030-01-01T00:00:50.000Z",
                         "error": None}]},
                 b={"status": "PENDING"})
    html = timeline(view, NOW)
    assert _bars(html, "a") == [("queued", 0.0, 10.0), ("attempt failed", 10.0, 10.0), ("attempt", 30.0, 20.0)]
    assert 'data-task="b"' not in html  # never started: no row
    assert "&lt;b&gt;no&lt;/b&gt;" in html and "<b>no" not in html


def test_an_attempt_still_going_is_drawn_up_to_now_and_an_ended_run_sets_the_scale():
    view = _view(w={"status": "WAITING", "started_at": "2030-01-01T00:00:50.000Z"})
    assert _bars(timeline(view, NOW), "w") == [("open", 50.0, 50.0)]
    ended = {**_view(c={"status": "COMPLETED", "started_at": "2030-01-01T00:00:00.000Z",
                        "ended_at": "2030-01-01T00:00:05.000Z"}), "ended_at": "2030-01-01T00:00:10.000Z"}
    assert _bars(timeline(ended, NOW), "c") == [("attempt", 0.0, 50.0)]  # no log: its start to its end


def test_nothing_started_says_so():
    assert "No task has started yet" in timeline(_view(a={"status": "PENDING"}), NOW)
