"""The audit log (GET /console/audit?actor=&action=&workflow=&run=&since=&until=&cursor=): every
operator's action, who, when, from where, why and how it was answered, oldest first from ``since`` (the
last 7 days unless given), a page at a time: what GET /audit answers, as a page with its filters as a
form (several actions at once, a workflow with its runs, one run, a window of time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from infra.clock import iso
from infra.engine import Engine
from infra.listing_params import WORKFLOW_ID, BadQuery, parse_time
from infra.ports import History
from statemachine.history import AuditAction, valid_cursor

from .layout import PageError, esc, href, page, time_text

PAGE = 100
DEFAULT_DAYS = 7
MAX_ACTOR = 200
MAX_ID = 200  # a run id, as GET /audit takes it


@dataclass(frozen=True)
class AuditFilters:
    """What the page shows: the filters of GET /audit (docs/api.md), each as its form's field."""

    who: str | None
    actions: tuple[AuditAction, ...]
    since: str
    until: str | None
    workflow: str | None
    run: str | None
    cursor: str | None

    def query(self, cursor: str | None) -> dict[str, str | None]:
        """The page's link with these filters, at ``cursor``."""
        return {"actor": self.who, "action": ",".join(a.value for a in self.actions) or None, "since": self.since,
                "until": self.until, "workflow": self.workflow, "run": self.run, "cursor": cursor}


def audit_page(engine: Engine, history: History, params: Mapping[str, str], *, root: str, actor: str) -> str:
    """``params["action"]``: one action or a comma-separated list (a multiple select's values, joined)."""
    shown = _filters(engine, params)
    found = history.actions(shown.who, shown.actions, shown.since, shown.cursor, PAGE, until=shown.until,
                            workflow_id=shown.workflow, run_id=shown.run)
    rows = "".join(
        f'<tr data-action="{esc(e.action.value)}" data-outcome="{e.outcome}"><td>{time_text(e.at)}</td>'
        f"<td>{esc(e.actor)}</td><td>{esc(e.action.value)}</td><td>{_target(root, e.target)}</td>"
        f"<td>{esc(e.reason)}</td><td>{e.outcome}</td><td>{esc(e.source_ip)}</td>"
        f'<td class="agent">{esc(e.user_agent)}</td></tr>' for e in found.items)
    table = ('<table class="audit"><thead><tr><th>at</th><th>who</th><th>action</th><th>on</th><th>why</th>'
             f"<th>answer</th><th>from</th><th>client</th></tr></thead><tbody>{rows}</tbody></table>"
             if rows else '<p class="empty">No action matches.</p>')
    if found.cursor is not None:
        more = href(root, "console", "audit", query=shown.query(found.cursor))
        table += f'<p class="paging"><a class="next" href="{more}">later actions</a></p>'
    options = "".join(f'<option value="{a.value}"{" selected" if a in shown.actions else ""}>{a.value}</option>'
                      for a in AuditAction)
    form = (f'<form class="filters" method="get" action="{href(root, "console", "audit")}">'
            f'<label>who <input name="actor" value="{esc(shown.who or "")}" maxlength="{MAX_ACTOR}"></label>'
            f'<label>actions <select name="action" multiple size="4">{options}</select></label>'
            f'<label>workflow <input name="workflow" value="{esc(shown.workflow or "")}"></label>'
            f'<label>run <input name="run" value="{esc(shown.run or "")}" maxlength="{MAX_ID}"></label>'
            f'<label>since <input name="since" value="{esc(shown.since)}"></label>'
            f'<label>until <input name="until" value="{esc(shown.until or "")}"></label><button>show</button></form>')
    window = f"from {time_text(shown.since)}" + (f" until {time_text(shown.until)}" if shown.until else "")
    body = f"<h1>Audit log</h1>{form}<p>Oldest first, {window}.</p>{table}"
    return page("Audit log", body, root=root, actor=actor)


def _filters(engine: Engine, params: Mapping[str, str]) -> AuditFilters:
    who, run = params.get("actor") or None, params.get("run") or None
    for name, text, most in (("who", who, MAX_ACTOR), ("run", run, MAX_ID)):
        if text is not None and (len(text) > most or any(ord(c) < 32 or ord(c) == 127 for c in text)):
            raise PageError(400, "Not a name", f"'{name}' must be 1 to {most} printable characters")
    workflow = params.get("workflow") or None
    if workflow is not None and not WORKFLOW_ID.match(workflow):
        raise PageError(400, "Not a workflow", "'workflow' must be a workflow id (a letter or _, then letters, "
                                               "digits or _)")
    names = [n.strip() for n in (params.get("action") or "").split(",") if n.strip()]
    known = {a.value for a in AuditAction}
    if any(n not in known for n in names):
        raise PageError(400, "No such action", f"action must be one or more of {', '.join(sorted(known))}")
    try:
        since = parse_time("since", params["since"]) if params.get("since") else \
            iso(engine.clock.now() - timedelta(days=DEFAULT_DAYS))
        until = parse_time("until", params["until"]) if params.get("until") else None
    except BadQuery as error:
        raise PageError(400, "Not a time", str(error)) from None
    if until is not None and until <= since:
        raise PageError(400, "Not a window", "'until' must be later than 'since'")
    cursor = params.get("cursor") or None
    if cursor is not None and not valid_cursor(cursor):
        raise PageError(400, "Not a cursor", "take 'cursor' from a page's 'later actions' link")
    return AuditFilters(who, tuple(AuditAction(n) for n in dict.fromkeys(names)), since, until, workflow, run, cursor)


def _target(root: str, target: str) -> str:
    """A run's id links to its page; a workflow (id@version) to the registry's."""
    if "@" in target:
        workflow = target.split("@", 1)[0]
        return f'<a href="{href(root, "console", "workflows", workflow)}">{esc(target)}</a>'
    return f'<a href="{href(root, "console", "runs", target)}">{esc(target)}</a>' if target else ""
