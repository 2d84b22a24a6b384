"""The workflow registry (GET /console/workflows) and one workflow (GET /console/workflows/{id}):
its versions (a deprecated one marked), each version's changelog and plan drawn (every task PENDING)
and shown as JSON, and the form that deprecates a version (version_actions.py).

The registry keeps the compiled plan of each version, not the YAML it was compiled from, so the
plan is what is shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from infra.engine import Engine

from .graph import run_graph
from .layout import PageError, esc, href, json_block, page
from .version_actions import deprecate_form


def workflows_page(engine: Engine, *, root: str, actor: str) -> str:
    versions: dict[str, list[str]] = {}
    for entry in engine.store.list_workflows():
        versions.setdefault(entry.workflow_id, []).append(entry.version + (" (deprecated)" if entry.deprecated
                                                                           else ""))
    rows = "".join(
        f'<tr data-workflow="{esc(w)}"><td><a href="{href(root, "console", "workflows", w)}">{esc(w)}</a></td>'
        f'<td>{esc(", ".join(vs))}</td><td><a href="{href(root, "console", query={"workflow": w})}">runs</a></td></tr>'
        for w, vs in sorted(versions.items()))
    table = ('<table class="workflows"><thead><tr><th>workflow</th><th>versions</th><th></th></tr></thead>'
             f"<tbody>{rows}</tbody></table>") if rows else \
        '<p class="empty">No workflow is registered (POST /workflows registers one).</p>'
    return page("Workflows", f"<h1>Workflows</h1>{table}", root=root, actor=actor)


def workflow_page(engine: Engine, workflow_id: str, params: Mapping[str, str], *, root: str, actor: str) -> str:
    entries = {e.version: e for e in engine.store.list_workflows() if e.workflow_id == workflow_id}
    versions = list(entries)
    if not versions:
        raise PageError(404, "No such workflow", f"no workflow '{workflow_id}' is registered")
    chosen = params.get("version") or versions[-1]
    if chosen not in versions:
        raise PageError(404, "No such version", f"workflow '{workflow_id}' has no version '{chosen}'")
    plan = engine.find_workflow(f"{workflow_id}@{chosen}")
    if plan is None:
        raise PageError(404, "No such version", f"workflow '{workflow_id}' has no version '{chosen}'")
    entry = entries[chosen]
    notes = (f'<p class="deprecated">Deprecated {esc(entry.deprecated_at or "")}: {esc(entry.deprecation)} '
             "(new runs of it are refused)</p>" if entry.deprecated else "") + (
        f'<p class="changelog">{esc(entry.changelog)}</p>' if entry.changelog else "")
    links = " ".join(
        f'<a href="{href(root, "console", "workflows", workflow_id, query={"version": v})}"'
        f'{" aria-current=page" if v == chosen else ""}>{esc(v)}</a>' for v in versions)
    graph = run_graph(plan, {task_id: "PENDING" for task_id in plan.nodes}, link=None)
    body = (f'<h1>Workflow <span class="id">{esc(workflow_id)}</span></h1>'
            f'<p class="versions">versions: {links}</p>'
            f'<section id="plan" data-version="{esc(chosen)}" data-hash="{esc(plan.hash)}">'
            f'<h2>{esc(plan.name or workflow_id)} {esc(chosen)}</h2>'
            f'<p>{esc(plan.description or "")}</p>{notes}'
            f'<p><a href="{href(root, "console", query={"workflow": workflow_id})}">its runs</a></p>'
            f'{deprecate_form(engine, actor, entry, root)}'
            f'{graph}<h2>Plan (JSON)</h2>{json_block(json.loads(plan.to_json()))}</section>')
    return page(f"Workflow {workflow_id}", body, root=root, actor=actor, flash=params.get("flash"))
