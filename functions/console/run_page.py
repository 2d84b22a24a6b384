"""A run's page (GET /console/runs/{run_id}): its header, the task graph coloured by status, the
timeline of attempts, the tasks, the history, and the actions that apply to it.

Everything comes from what the API's routes read: the run view (``Engine.describe_run``, as
GET /runs/{id}), the run's plan, and the History port (as GET /runs/{id}/history). Live links are
never shown: the view's approval and callback URLs are credentials, and the console decides an
approval through the inbox, in an approver's name, instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.engine import Engine
from infra.ports import History
from statemachine.history import encode_entry, valid_cursor
from statemachine.plan import Plan

from .actions import run_action_forms
from .graph import run_graph
from .layout import PageError, duration_text, esc, href, json_block, page, status_badge, time_text
from .layout import link as url
from .run_operations import operation_forms
from .timeline import timeline

HISTORY_PAGE = 100
REFRESH_MS = 3000


def load_run(engine: Engine, run_id: str) -> tuple[dict[str, Any], Plan]:
    """The run's view (with its inputs, which the API's view leaves out) and its plan, or a 404 page."""
    run = engine.store.get_run(run_id)
    view = engine.describe_run(run_id) if run is not None else None
    if run is None or view is None:
        raise PageError(404, "No such run", f"there is no run with id '{run_id}'")
    return {**view, "inputs": run.inputs}, engine.plan(run.plan_hash)


def run_page(engine: Engine, history: History, run_id: str, params: Mapping[str, str], *, root: str,
             actor: str) -> str:
    view, plan = load_run(engine, run_id)
    cursor = params.get("history") or None
    if cursor is not None and not valid_cursor(cursor):
        raise PageError(400, "This history page cannot be shown", "'history' is not a cursor this page gave out")
    statuses = {task_id: task["status"] for task_id, task in view["tasks"].items()}
    graph = run_graph(plan, statuses, link=lambda task_id: url(root, "console", "runs", run_id, "tasks", task_id))
    # An ended run still refreshes: its history is written a moment after each change.
    live = f' data-live="{REFRESH_MS}"'
    body = (f'<h1>Run <span class="id">{esc(run_id)}</span></h1>'
            f'<section id="run-header"{live}>{_header(view, plan, root)}</section>'
            f'{run_action_forms(engine, actor, run_id, view["status"], root)}'
            f'{operation_forms(engine, actor, view, plan, root)}'
            f'<section id="graph"{live}><h2>Graph</h2>{graph}</section>'
            f'<section id="timeline"{live}><h2>Timeline</h2>{timeline(view, engine.clock.now())}</section>'
            f'<section id="tasks"{live}><h2>Tasks</h2>{_tasks(view, plan, run_id, root)}</section>'
            f'<section id="data"{live}><h2>Inputs and outputs</h2>{_data(view)}</section>'
            f'<section id="history"{live if cursor is None else ""}><h2>History</h2>'
            f'{_history(history, run_id, cursor, root)}</section>')
    return page(f"Run {run_id}", body, root=root, actor=actor, flash=params.get("flash"))


def _header(view: Mapping[str, Any], plan: Plan, root: str) -> str:
    rows = [("status", status_badge(view["status"])),
            ("workflow", f'<a href="{href(root, "console", "workflows", plan.workflow_id)}">'
                         f'{esc(plan.workflow_id)}@{esc(plan.version)}</a>'),
            ("created", time_text(view["created_at"])), ("ended", time_text(view["ended_at"])),
            ("duration", duration_text(view["duration_ms"]))]
    if view.get("parent"):
        parent = view["parent"]
        rows.append(("parent run", f'<a href="{href(root, "console", "runs", parent)}">{esc(parent)}</a>'))
    if view.get("redrives"):
        rows.append(("redriven", f"{int(view['redrives'])} time(s)"))
    waiting = sorted({f"{a['task_id']} waits for {a['approver']}" for a in view["approvals"]})
    if waiting:
        rows.append(("approvals", esc("; ".join(waiting)) +
                     f' (<a href="{href(root, "console", "approvals")}">decide in the inbox</a>)'))
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows)
    out = f'<dl class="facts" data-run-status="{esc(view["status"])}">{cells}</dl>'
    if view.get("error"):
        out += f'<h3>Error</h3>{json_block(view["error"])}'
    return out


def _data(view: Mapping[str, Any]) -> str:
    out = f'<h3>Inputs</h3>{json_block(view["inputs"])}'
    if view.get("outputs") is not None:
        out += f'<h3>Outputs</h3>{json_block(view["outputs"])}'
    return out


def _tasks(view: Mapping[str, Any], plan: Plan, run_id: str, root: str) -> str:
    rows = []
    for task_id, task in view["tasks"].items():
        node = plan.nodes.get(task_id)
        kind = node.type or node.kind if node is not None else ""
        error = task.get("error") or {}
        message = f"{error.get('type', '')}: {error.get('message', '')}" if error else ""
        rows.append(f'<tr data-task="{esc(task_id)}" data-status="{esc(task["status"])}">'
                    f'<td><a href="{href(root, "console", "runs", run_id, "tasks", task_id)}">{esc(task_id)}</a></td>'
                    f'<td>{esc(kind)}</td><td>{status_badge(task["status"])}</td><td>{esc(task["attempts"])}</td>'
                    f'<td>{duration_text(view["timing"][task_id]["duration_ms"])}</td>'
                    f'<td class="error">{esc(message[:300])}</td></tr>')
    return ('<table class="tasks"><thead><tr><th>task</th><th>type</th><th>status</th><th>attempts</th>'
            f'<th>duration</th><th>error</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _history(history: History, run_id: str, cursor: str | None, root: str) -> str:
    found = history.of_run(run_id, cursor, HISTORY_PAGE)
    rows = []
    for entry in map(encode_entry, found.items):
        cause = entry["cause"] or {}
        rows.append(f'<tr data-item="{esc(entry["item"])}" data-status="{esc(entry["status"])}">'
                    f'<td>{time_text(entry["at"])}</td><td>{esc(entry["item"] or "(run)")}</td>'
                    f'<td>{esc(entry["previous"] or "")} → {status_badge(entry["status"])}</td>'
                    f'<td class="reason">{esc(entry["reason"])}</td>'
                    f'<td>{esc(" ".join(str(v) for v in cause.values() if v))}</td></tr>')
    if not rows:
        return '<p class="empty">No history yet (it is written a moment after each change).</p>'
    later = href(root, "console", "runs", run_id, query={"history": found.cursor})
    more = f'<p class="paging"><a class="later" href="{later}">later entries</a></p>' if found.cursor else ""
    return ('<table class="history"><thead><tr><th>at</th><th>item</th><th>change</th><th>reason</th><th>cause</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}')
