"""The dev server's outbox as a page: what the local stand-ins were asked to send, newest first.

``GET /_dev/outbox`` answers this page when the request's Accept header asks for
``text/html`` (a browser) and JSON otherwise. Plain, accessible HTML with no
script; every value is escaped, and http(s) links in message bodies become
``<a href>`` so a person can follow an approval link from a "sent" email.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from html import escape, unescape
from typing import Any

KINDS = ("email", "sms", "voice", "llm")
EXCERPT = 600  # characters of a body shown inline; every link of the whole body is still listed
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?*'\""
_TAG = re.compile(r"<[^>]*>")

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
article{border-top:1px solid #bbb;padding:.5rem 0}h2{font-size:1.1rem;margin:.25rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.25rem 0}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}.body{white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;
padding:.5rem;margin:.25rem 0}nav a{margin-right:.75rem}a{color:#0645ad}"""


# ------------------------------------------------------------------ content negotiation

def _accept_ranges(accept: str) -> Iterable[tuple[str, float]]:
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        yield media.lower(), q


def wants_html(headers: Mapping[str, str] | None) -> bool:
    """Whether the Accept header asks for text/html at least as much as for JSON (``*/*`` alone: no)."""
    accept = next((str(v) for k, v in (headers or {}).items() if k.lower() == "accept"), "")
    html_q = json_q = 0.0
    for media, q in _accept_ranges(accept):
        if media in ("text/html", "text/*"):
            html_q = max(html_q, q)
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, q)
    return html_q > 0 and html_q >= json_q


# ------------------------------------------------------------------ links

def find_links(text: str) -> list[str]:
    """The distinct http(s) URLs in ``text``, in order, without trailing punctuation."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if url not in found and len(url) > len("https://"):
            found.append(url)
    return found


def _trim(url: str) -> str:
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def _anchor(url: str) -> str:
    return f'<a href="{escape(url, quote=True)}" rel="noreferrer">{escape(url)}</a>'


def linkify(text: str) -> str:
    """``text`` escaped, with each http(s) URL in it an ``<a href>``."""
    out, last = [], 0
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if len(url) <= len("https://"):
            continue
        out.append(escape(text[last:match.start()]))
        out.append(_anchor(url))
        last = match.start() + len(url)
    out.append(escape(text[last:]))
    return "".join(out)


# ------------------------------------------------------------------ entries

def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _recipients(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, label in (("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To")):
        value = request.get(key)
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        if value:
            rows.append((label, str(value)))
    return rows


def _summary(entry: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], str]:
    """(heading, field rows, body text) for one entry, by its type."""
    kind = str(entry.get("type") or "message")
    request = entry.get("request") if isinstance(entry.get("request"), Mapping) else {}
    result = entry.get("result") if isinstance(entry.get("result"), Mapping) else {}
    rows: list[tuple[str, str]] = []
    if kind == "email":
        subject = _as_text(request.get("subject")) or "(no subject)"
        rows = [("From", _as_text(request.get("from"))), *_recipients(request)]
        body = _as_text(request.get("body"))
        if request.get("html"):
            body = _html_text(body)
        if request.get("attachments"):
            rows.append(("Attachments", ", ".join(map(str, request["attachments"]))))
        return subject, rows, body
    if kind == "sms":
        return "Text message", [("From", _as_text(request.get("from"))), *_recipients(request)], \
            _as_text(request.get("body"))
    if kind == "voice":
        return "Voice call", [*_recipients(request), ("Voice", _as_text(request.get("voice")))], \
            _as_text(request.get("message"))
    if kind == "llm":
        rows = [("Model", _as_text(request.get("model")))]
        if request.get("system_message"):
            rows.append(("System", _as_text(request.get("system_message"))))
        body = _as_text(request.get("prompt"))
        if result.get("text") is not None:
            body += "\n\n— answer —\n" + _as_text(result.get("text"))
        return "LLM prompt", rows, body
    return kind, [*_recipients(request)], _as_text(request or None)


def _html_text(body: str) -> str:
    """An HTML body as readable text, keeping each link's address next to its words."""
    with_hrefs = re.sub(r"<a\b[^>]*?\bhref\s*=\s*[\"']?([^\"'\s>]+)[^>]*>", lambda m: f" {m.group(1)} ", body,
                        flags=re.IGNORECASE)
    with_breaks = re.sub(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", "\n", with_hrefs, flags=re.IGNORECASE)
    text = unescape(_TAG.sub("", re.sub(r"<(script|style)\b.*?</\1\s*>", "", with_breaks,
                                        flags=re.IGNORECASE | re.DOTALL)))
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _entry(entry: Mapping[str, Any]) -> str:
    kind = str(entry.get("type") or "message")
    heading, rows, body = _summary(entry)
    at = _as_text(entry.get("at"))
    fields = [("Type", kind), ("Run", _as_text(entry.get("run_id"))), ("Task", _as_text(entry.get("task_id"))),
              *rows]
    result = entry.get("result") if isinstance(entry.get("result"), Mapping) else {}
    if result.get("message_id"):
        fields.append(("Message id", str(result["message_id"])))
    html = [f'<article><h2><span class="kind">[{escape(kind)}]</span> {escape(heading)}</h2>']
    if at:
        html.append(f'<p><time datetime="{escape(at, quote=True)}">{escape(at)}</time></p>')
    html.append("<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in fields if v) + "</dl>")
    if body:
        shown = body[:EXCERPT]
        cut = len(body) > EXCERPT
        html.append(f'<div class="body">{linkify(shown)}{"…" if cut else ""}</div>')
        if cut:
            shown_links = set(find_links(shown))
            rest = [url for url in find_links(body) if url not in shown_links]
            if rest:
                html.append("<p>Links further in this message:</p><ul>"
                            + "".join(f"<li>{_anchor(url)}</li>" for url in rest) + "</ul>")
    html.append("</article>")
    return "".join(html)


def render(entries: Iterable[Mapping[str, Any]], kind: str | None = None) -> str:
    """The outbox page for ``entries`` (as ``outbox.entries()`` gives them, oldest first), newest first."""
    ordered = sorted(reversed(list(entries)), key=lambda e: str(e.get("at") or ""), reverse=True)
    title = "Outbox" + (f": {kind}" if kind else "")
    nav = ['<nav aria-label="Filter by type">',
           '<a href="?"' + (' aria-current="page"' if not kind else "") + ">all</a>"]
    for name in KINDS:
        current = ' aria-current="page"' if kind == name else ""
        nav.append(f'<a href="?type={name}"{current}>{name}</a>')
    nav.append("</nav>")
    count = len(ordered)
    noun = "message" if count == 1 else "messages"
    summary = (f"<p>{count} {noun}{' of type ' + escape(kind) if kind else ''}, newest first. "
               "Nothing here was sent: the local stand-ins record what they were asked to send. "
               '<a href="">Reload</a> to see new ones.</p>')
    items = "".join(_entry(e) for e in ordered) or "<p>No messages yet.</p>"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{escape(title)}</title><style>{_STYLE}</style></head>'
            f"<body><main><h1>{escape(title)}</h1>{''.join(nav)}{summary}{items}</main></body></html>")


def response(entries: Iterable[Mapping[str, Any]], kind: str | None = None) -> dict[str, Any]:
    """The page as an API Gateway proxy response."""
    return {"statusCode": 200,
            "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Vary": "Accept",
                        "Referrer-Policy": "no-referrer"},
            "body": render(entries, kind)}
