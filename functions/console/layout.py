"""The console's page shell: the head, the navigation, the flash message, the headers every page is
sent with, and the few helpers every page builds its HTML with. Every value that reaches a page goes
through ``esc`` (text and attributes) or ``href`` (a link made of escaped, percent-encoded parts).

Links are relative to the page (``root``: as many ``../`` as the page is deep), never absolute: on AWS
the API's stage (``/Prod``) or a custom domain's base path sits in front of every path, and a
relative link keeps it without the page having to know it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from aws_lambda_powertools.event_handler import Response

from functions.console_auth.settings import signs_in
from infra.json_http import finite

# No inline script may run (script-src 'self': the one static file); styles may be inline (the
# timeline's bar widths are style attributes); forms post only to this origin; never framed.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; connect-src 'self'")
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY"}
NAV = (("console", "Runs"), ("console/approvals", "Approvals"), ("console/workflows", "Workflows"),
       ("console/audit", "Audit"))


def esc(value: Any) -> str:
    """Text or an attribute value, escaped (quotes too). A lone surrogate from a stored value shows as
    "?" rather than failing the page's encoding later."""
    text = value if isinstance(value, str) else str(value)
    return escape(text.encode("utf-8", "replace").decode("utf-8"), quote=True)


def root_of(resource: str, path: str = "") -> str:
    """The relative path from a page at ``resource`` (its route, e.g. /console/runs/{run_id}) to the
    API's root: "./" for /console, "../../" for /console/runs/{run_id}. The route, not the path, counts
    (a custom domain's base path may stand in front of the path), but a path asked for with a final
    "/" (/console/) is one level deeper for the browser."""
    depth = len([s for s in resource.strip("/").split("/") if s]) - 1
    depth += 1 if len(path) > 1 and path.endswith("/") else 0
    return "../" * depth if depth > 0 else "./"


def link(root: str, *segments: str, query: Mapping[str, str | None] | None = None) -> str:
    """``root`` + segments, each segment percent-encoded whole (a "/" in an id stays in its segment),
    the query's empty values left out."""
    path = root + "/".join(quote(s, safe="") for s in segments)
    kept = {k: v for k, v in (query or {}).items() if v}
    return path + ("?" + urlencode(kept) if kept else "")


def href(root: str, *segments: str, query: Mapping[str, str | None] | None = None) -> str:
    """``link``, escaped for an attribute."""
    return esc(link(root, *segments, query=query))


def json_block(value: Any) -> str:
    """A JSON value shown as indented text (never NaN or Infinity: finite() makes them strings)."""
    return f"<pre class=\"json\">{esc(json.dumps(finite(value), indent=2, ensure_ascii=False, default=str))}</pre>"


def status_badge(status: Any) -> str:
    text = str(status or "PENDING")
    return f'<span class="badge status-{esc(text.lower())}" data-status="{esc(text)}">{esc(text)}</span>'


def page(title: str, body: str, *, root: str, actor: str, flash: str | None = None) -> str:
    nav = "".join(f'<a href="{href(root, *path.split("/"))}">{esc(label)}</a>' for path, label in NAV)
    message = f'<p class="flash" role="status">{esc(flash)}</p>' if flash else ""
    # Only where there is a sign-in to end (on AWS; under `loopline dev` everyone is the local user).
    sign_out = f' <a id="sign-out" href="{href(root, "console", "logout")}">sign out</a>' if signs_in() else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f'<title>{esc(title)} · loopline</title>'
            f'<link rel="stylesheet" href="{href(root, "console", "static", "console.css")}">'
            f'<script src="{href(root, "console", "static", "console.js")}" defer></script></head>'
            f'<body><header class="top"><strong>loopline</strong><nav>{nav}</nav>'
            f'<span class="who">signed in as <span id="actor">{esc(actor)}</span>{sign_out}</span></header>'
            f"<main>{message}{body}</main></body></html>")


def html(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    body = text.encode("utf-8", "replace").decode("utf-8")
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body,
                    headers={**HEADERS, **(headers or {})})


def error_page(status: int, title: str, message: str, *, root: str, actor: str) -> Response:
    """An error as a page with its status: never a traceback, never JSON in a browser's tab."""
    body = f'<h1 class="error" data-status-code="{status}">{esc(title)}</h1><p>{esc(message)}</p>'
    return html(status, page(title, body, root=root, actor=actor))


def redirect(location: str) -> Response:
    """303: the browser follows with a GET (a reload then repeats no action)."""
    return Response(status_code=303, headers={**HEADERS, "Location": location}, body="")


class PageError(Exception):
    """A request the console answers with an error page of this status (app.py renders it)."""

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def time_text(stamp: str | None) -> str:
    """A stored time (ISO-8601, UTC) for a person: "2030-01-31 12:00:05", the full value as its title."""
    if not stamp:
        return '<span class="none">—</span>'
    return f'<time datetime="{esc(stamp)}" title="{esc(stamp)}">{esc(stamp[:19].replace("T", " "))}</time>'


def duration_text(ms: int | None) -> str:
    if ms is None:
        return '<span class="none">—</span>'
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
