"""The runs list (GET /console): filters, counts by status, one page of runs, the "older" link.

It reads what GET /runs and GET /runs/counts read, through the same code: the parameters are parsed
by infra/listing_params.py and the runs come from the engine's RunListing (the RunQueries port,
indexes on DynamoDB). A page is one listing query of at most ``limit`` runs (50 unless asked),
never a read of every run.

The counts by status are not part of that page: they read the index keys of every run in the
filters' window (10,000 runs: 10,000 keys), so the page carries a link to them (``?part=counts``,
the same page with the counts only) that its script loads into place after the runs, and again
every 30 s rather than with each refresh of the runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from infra.engine import Engine
from infra.engine.run_listing import summary_view
from infra.listing_params import BadQuery, encode_cursor, run_query
from statemachine.status import RunStatus

from .layout import PageError, duration_text, esc, href, page, status_badge, time_text

REFRESH_MS = 5000  # how often the open page fetches itself again (console.js; paused while hidden)
COUNTS_REFRESH_MS = 30_000
FILTERS = ("status", "workflow", "since", "until")
PART = "part"  # ?part=counts: the counts by status alone


def runs_page(engine: Engine, params: Mapping[str, str], *, root: str, actor: str) -> str:
    part = params.get(PART)
    if part not in (None, "counts"):
        raise PageError(400, "This listing cannot be shown", "'part' can only be 'counts'")
    try:
        query = run_query({k: v for k, v in params.items() if v and k != PART})  # an empty field filters nothing
    except BadQuery as error:
        raise PageError(400, "This listing cannot be shown", str(error)) from None
    filters = {name: params.get(name) or None for name in FILTERS}
    if part == "counts":
        counts = engine.listing.count_runs(query.workflow_id, query.since, query.until)
        body = f'<h1>Runs by status</h1><section id="counts">{_counts(counts, filters, root)}</section>'
        return page("Runs by status", body, root=root, actor=actor)
    listed = engine.listing.list_runs(query)
    older = None
    if listed.more and listed.runs:
        older = href(root, "console", query={**filters, "limit": params.get("limit"),
                                             "cursor": encode_cursor(listed.runs[-1].position, query)})
    rows = "".join(_row(summary_view(s), root) for s in listed.runs)
    table = (f'<table class="runs"><thead><tr><th>run</th><th>workflow</th><th>status</th><th>created</th>'
             f'<th>ended</th><th>duration</th></tr></thead><tbody>{rows}</tbody></table>'
             if rows else '<p class="empty">No runs match.</p>')
    paging = '<p class="paging">'
    if params.get("cursor"):
        paging += f'<a class="newest" href="{href(root, "console", query=filters)}">newest</a> '
    if older:
        paging += f'<a class="older" rel="next" href="{older}">older</a>'
    paging += "</p>"
    # Only the first page refreshes itself: an older page stays where the reader paged to.
    live = "" if params.get("cursor") else f' data-live="{REFRESH_MS}"'
    window = {k: v for k, v in filters.items() if k != "status"}
    counts_link = href(root, "console", query={**window, PART: "counts"})
    body = (f"<h1>Runs</h1>{_filter_form(params, root)}"
            f'<section id="counts" data-live="{COUNTS_REFRESH_MS}" data-from="{counts_link}">'
            f'<a href="{counts_link}">counts by status</a></section>'
            f'<section id="listing"{live}>{table}{paging}</section>')
    return page("Runs", body, root=root, actor=actor)


def _row(run: dict, root: str) -> str:
    return (f'<tr data-run="{esc(run["run_id"])}" data-status="{esc(run["status"])}">'
            f'<td><a href="{href(root, "console", "runs", run["run_id"])}">{esc(run["run_id"])}</a></td>'
            f'<td>{esc(run["workflow_id"])}</td><td>{status_badge(run["status"])}</td>'
            f'<td>{time_text(run["created_at"])}</td><td>{time_text(run["ended_at"])}</td>'
            f'<td>{duration_text(run["duration_ms"])}</td></tr>')


def _counts(counts: Mapping[str, int], filters: Mapping[str, str | None], root: str) -> str:
    items = "".join(
        f'<li data-count-status="{esc(status)}"><a href="{href(root, "console", query={**filters, "status": status})}">'
        f'{status_badge(status)} <span class="count">{counts.get(status, 0)}</span></a></li>'
        for status in RunStatus)
    total = sum(counts.values())
    return f'<ul class="counts"><li>all <span class="count" id="total">{total}</span></li>{items}</ul>'


def _filter_form(params: Mapping[str, str], root: str) -> str:
    chosen = (params.get("status") or "").upper()
    options = '<option value="">any</option>' + "".join(
        f'<option value="{esc(s)}"{" selected" if s == chosen else ""}>{esc(s)}</option>' for s in RunStatus)
    fields = "".join(
        f'<label>{esc(label)} <input name="{name}" value="{esc(params.get(name) or "")}" '
        f'placeholder="{esc(hint)}"></label>'
        for name, label, hint in (("workflow", "workflow", "id"), ("since", "since", "2030-01-31T00:00:00Z"),
                                  ("until", "until", "ISO-8601")))
    return (f'<form class="filters" method="get" action="{href(root, "console")}">'
            f'<label>status <select name="status">{options}</select></label>{fields}'
            f'<button type="submit">Filter</button> <a href="{href(root, "console")}">clear</a></form>')
