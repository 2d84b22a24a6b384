"""The audit log (GET /console/audit?actor=&action=&since=&cursor=): every operator's action, who,
when, from where, why and how it was answered, oldest first from ``since`` (the last 7 days unless
given), a page at a time: what GET /audit answers, as a page with its filters as a form.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from infra.clock import iso
from infra.engine import Engine
from infra.listing_params import BadQuery, parse_time
from infra.ports import History
from statemachine.history import AuditAction, valid_cursor

from .layout import PageError, esc, href, page, time_text

PAGE = 100
DEFAULT_DAYS = 7
MAX_ACTOR = 200


def audit_page(engine: Engine, history: History, params: Mapping[str, str], *, root: str, actor: str) -> str:
    who, action, since, cursor = _filters(engine, params)
    found = history.actions(who, action, since, cursor, PAGE)
    rows = "".join(
        f'<tr data-action="{esc(e.action.value)}" data-outcome="{e.outcome}"><td>{time_text(e.at)}</td>'
        f"<td>{esc(e.actor)}</td><td>{esc(e.action.value)}</td><td>{_target(root, e.target)}</td>"
        f"<td>{esc(e.reason)}</td><td>{e.outcome}</td><td>{esc(e.source_ip)}</td>"
        f'<td class="agent">{esc(e.user_agent)}</td></tr>' for e in found.items)
    table = ('<table class="audit"><thead><tr><th>at</th><th>who</th><th>action</th><th>on</th><th>why</th>'
             f"<th>answer</th><th>from</th><th>client</th></tr></thead><tbody>{rows}</tbody></table>"
             if rows else '<p class="empty">No action matches.</p>')
    if found.cursor is not None:
        more = href(root, "console", "audit",
                    query={"actor": who, "action": action.value if action else None, "since": since,
                           "cursor": found.cursor})
        table += f'<p class="paging"><a class="next" href="{more}">later actions</a></p>'
    options = "".join(f'<option value="{a.value}"{" selected" if a is action else ""}>{a.value}</option>'
                      for a in AuditAction)
    form = (f'<form class="filters" method="get" action="{href(root, "console", "audit")}">'
            f'<label>who <input name="actor" value="{esc(who or "")}" maxlength="{MAX_ACTOR}"></label>'
            f'<label>action <select name="action"><option value="">any</option>{options}</select></label>'
            f'<label>since <input name="since" value="{esc(since)}"></label><button>show</button></form>')
    body = f"<h1>Audit log</h1>{form}<p>Oldest first, from {time_text(since)}.</p>{table}"
    return page("Audit log", body, root=root, actor=actor)


def _filters(engine: Engine, params: Mapping[str, str]) -> tuple[str | None, AuditAction | None, str, str | None]:
    who = params.get("actor") or None
    if who is not None and (len(who) > MAX_ACTOR or any(ord(c) < 32 or ord(c) == 127 for c in who)):
        raise PageError(400, "Not a name", f"'who' must be 1 to {MAX_ACTOR} printable characters")
    text = params.get("action") or None
    if text is not None and text not in {a.value for a in AuditAction}:
        raise PageError(400, "No such action", f"action must be one of {', '.join(a.value for a in AuditAction)}")
    try:
        since = parse_time("since", params["since"]) if params.get("since") else \
            iso(engine.clock.now() - timedelta(days=DEFAULT_DAYS))
    except BadQuery as error:
        raise PageError(400, "Not a time", str(error)) from None
    cursor = params.get("cursor") or None
    if cursor is not None and not valid_cursor(cursor):
        raise PageError(400, "Not a cursor", "take 'cursor' from a page's 'later actions' link")
    return who, AuditAction(text) if text else None, since, cursor


def _target(root: str, target: str) -> str:
    """A run's id links to its page; a workflow (id@version) to the registry's."""
    if "@" in target:
        workflow = target.split("@", 1)[0]
        return f'<a href="{href(root, "console", "workflows", workflow)}">{esc(target)}</a>'
    return f'<a href="{href(root, "console", "runs", target)}">{esc(target)}</a>' if target else ""
