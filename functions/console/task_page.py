"""A task's page (GET /console/runs/{run_id}/tasks/{task_id}): what it was given, what it gave back,
its error, its attempts with their errors, what its code printed, and a loop's iterations a page at
a time (RunListing.iterations, as GET /runs/{id}/tasks/{task}/iterations reads them).

What a task was given is its configuration as the attempt that started last evaluated it, every
``env.*`` value masked (statemachine/shown_input.py: env is where a deployment's secrets come from),
then as the workflow declares it; a sub-workflow's inputs are shown as given. What it
printed is kept for code tasks (python, shell, custom) only: the attempt that ended last, cut to a
bound (``TaskRecord.printed``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra.engine import Engine
from infra.engine.run_listing import MAX_ITERATIONS_PAGE, UnknownLoop
from infra.listing_params import BadQuery, iteration_page
from infra.ports import TaskRecord

from .layout import PageError, duration_text, esc, href, json_block, page, status_badge, time_text
from .run_page import load_run

CODE_TYPES = ("python", "shell", "custom")


def task_page(engine: Engine, run_id: str, task_id: str, params: Mapping[str, str], *, root: str, actor: str) -> str:
    view, plan = load_run(engine, run_id)
    node = plan.nodes.get(task_id)
    task = view["tasks"].get(task_id)
    if node is None or task is None:
        raise PageError(404, "No such task", f"run '{run_id}' has no task '{task_id}'")
    _, records = engine.store.load(run_id, [task_id])
    record = records.get(task_id)
    times = view["timing"][task_id]
    facts = [("run", f'<a href="{href(root, "console", "runs", run_id)}">{esc(run_id)}</a>'),
             ("status", status_badge(task["status"])), ("kind", esc(node.type or node.kind)),
             ("depends on", esc(", ".join(node.deps)) or "—"), ("attempts", esc(task["attempts"])),
             ("queued", time_text(times["queued_at"])), ("started", time_text(times["started_at"])),
             ("ended", time_text(times["ended_at"])), ("duration", duration_text(times["duration_ms"]))]
    if record is not None and record.child_run:
        facts.append(("child run", f'<a href="{href(root, "console", "runs", record.child_run)}">'
                                   f"{esc(record.child_run)}</a>"))
    body = (f'<h1>Task <span class="id">{esc(task_id)}</span></h1>'
            f'<dl class="facts" data-task-status="{esc(task["status"])}">'
            + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    if node.description or node.name:
        body += f"<p>{esc(node.name or '')} {esc(node.description or '')}</p>"
    body += f"<h2>Input</h2>{_input(node.config, record)}"
    if record is not None and record.child_inputs is not None:
        body += f"<h3>The sub-workflow's inputs</h3>{json_block(record.child_inputs)}"
    body += f'<h2>Output</h2>{json_block(task["output"])}' if task["output"] is not None else ""
    body += f'<h2>Error</h2><div id="task-error">{json_block(task["error"])}</div>' if task["error"] else ""
    if record is not None and record.approval:
        body += f"<h2>Approval</h2>{json_block(record.approval)}"
    body += f"<h2>Attempts</h2>{_attempts(times['attempt_log'])}"
    body += f"<h2>What it printed</h2>{_printed(task, node.type)}"
    if node.kind == "loop":
        body += f"<h2>Iterations</h2>{_iterations(engine, run_id, task_id, params, root)}"
    return page(f"Task {task_id} of run {run_id}", body, root=root, actor=actor)


def _input(declared: Any, record: TaskRecord | None) -> str:
    shown = record.shown_input if record is not None else None
    if shown is None:
        return f'<p class="note">As declared (it has no expression, or it has not started).</p>{json_block(declared)}'
    try:
        evaluated: Any = json.loads(shown)
    except ValueError:
        evaluated = shown  # cut to its bound: shown as text
    return ('<p class="note">As its last attempt evaluated it, every <code>env.*</code> value masked.</p>'
            f'<div id="task-input">{json_block(evaluated)}</div>'
            f'<details><summary>As declared</summary>{json_block(declared)}</details>')


def _attempts(log: list[dict[str, Any]]) -> str:
    if not log:
        return '<p class="empty">No attempt has ended.</p>'
    rows = "".join(
        f'<tr data-attempt="{esc(e.get("attempt"))}"><td>{esc(e.get("attempt"))}</td>'
        f'<td>{time_text(e.get("started_at"))}</td><td>{time_text(e.get("ended_at"))}</td>'
        f'<td>{duration_text(e.get("duration_ms"))}</td>'
        f'<td class="error">{esc(_error_text(e.get("error")))}</td></tr>' for e in log)
    return ('<table class="attempts"><thead><tr><th>#</th><th>started</th><th>ended</th><th>duration</th>'
            f"<th>error</th></tr></thead><tbody>{rows}</tbody></table>")


def _error_text(error: Any) -> str:
    return f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) else ""


def _printed(task: Mapping[str, Any], task_type: str | None) -> str:
    if task.get("printed"):
        return f'<pre class="printed">{esc(task["printed"])}</pre>'
    if task_type in CODE_TYPES:
        return '<p class="empty">Nothing: its code printed nothing (or it has not run yet).</p>'
    return ('<p class="empty">Not kept for this task type: only code tasks (python, shell, custom) keep what '
            "their last attempt printed.</p>")


def _iterations(engine: Engine, run_id: str, task_id: str, params: Mapping[str, str], root: str) -> str:
    try:
        start, limit = iteration_page({k: params[k] for k in ("cursor", "limit") if params.get(k)},
                                      MAX_ITERATIONS_PAGE)
        found = engine.listing.iterations(run_id, task_id, start, limit)
    except (BadQuery, UnknownLoop) as error:
        raise PageError(400, "These iterations cannot be shown", str(error)) from None
    if found is None:
        raise PageError(404, "No such run", f"there is no run with id '{run_id}'")
    rows = "".join(
        f'<tr data-index="{it["index"]}" data-status="{esc(it["status"])}"><td>{it["index"]}</td>'
        f'<td>{status_badge(it["status"])}</td><td>{duration_text(it["duration_ms"])}</td>'
        f'<td>{esc(", ".join(f"{k}: {v}" for k, v in it["tasks"].items()))}</td>'
        f'<td class="error">{esc(_error_text(it["error"]))}</td>'
        f'<td>{json_block(it["output"]) if it["output"] is not None else ""}</td></tr>'
        for it in found["iterations"])
    total = found["total"]
    out = f'<p>{esc(total if total is not None else "?")} iteration(s); showing from {start}.</p>'
    out += ('<table class="iterations"><thead><tr><th>#</th><th>status</th><th>duration</th><th>its tasks</th>'
            f'<th>error</th><th>output</th></tr></thead><tbody>{rows}</tbody></table>')
    if found["next"] is not None:
        more = href(root, "console", "runs", run_id, "tasks", task_id,
                    query={"cursor": str(found["next"]), "limit": params.get("limit")})
        out += f'<p class="paging"><a class="next" href="{more}">next iterations</a></p>'
    return out
