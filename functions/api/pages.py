"""The approval page: plain, accessible HTML with every value escaped. No front-end build."""

from html import escape
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response

from infra.engine import LinkError
from infra.json_http import finite

# The approval page's URL is a credential: never cached, never sent on as a referrer to another
# origin, never framed. ("same-origin" rather than "no-referrer": under no-referrer a browser sends
# the page's own form post with `Origin: null`, which the dev server must refuse as foreign.)
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'"}
# The page's buttons: (the decision posted, its label).
BOTH_CHOICES = (("APPROVED", "Approve"), ("REJECTED", "Reject"))


def html(status: int, text: str) -> Response:
    # A lone surrogate (from a stored value) cannot be encoded as UTF-8: shown as "?", never a 5xx.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=text, headers=PAGE_HEADERS)


def wants_html(headers: dict[str, str] | None) -> bool:
    """Whether the request asks for a page (a browser), not JSON."""
    headers = headers or {}
    return "text/html" in (headers.get("Accept") or headers.get("accept") or "")


def checked_form(body: str | None, csrf: str) -> dict[str, str]:
    """The fields of an approval page's form post, once its anti-forgery value is the page's own
    (``csrf``, bound to the link): else a 403, nothing decided. Comments with a browser's CRLF line ends made LF."""
    import hmac

    form = {k: v[0] for k, v in parse_qs(body or "").items()}
    # As bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, a 5xx).
    sent = str(form.get("csrf", "")).encode("utf-8", "replace")
    if not hmac.compare_digest(sent, csrf.encode()):
        raise LinkError(403, "this form did not come from the approval page")
    form["comments"] = (form.get("comments") or "").replace("\r\n", "\n")
    return form

_STYLE = """body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}
textarea{width:100%;min-height:6rem}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}
pre{background:#f4f4f4;padding:.5rem;overflow:auto}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{escape(title)}</title><style>{_STYLE}</style></head>'
            f"<body><main>{body}</main></body></html>")


def approval_page(info: dict[str, Any], csrf: str, choices: tuple[tuple[str, str], ...] = BOTH_CHOICES,
                  note: str | None = None) -> str:
    """``choices``: the buttons; ``note``: a sentence above them (a confirmation page says what it records)."""
    import json

    decided = info.get("decisions_so_far") or 0
    rows = [("Your link as", info.get("approver")),
            ("Decisions needed", f"{info.get('required_approvals', 1)} approval(s); {decided} decision(s) so far"),
            ("Workflow", info.get("workflow_id")), ("Run", info.get("run_id")), ("Task", info.get("task_id")),
            ("Approvers", ", ".join(map(str, info.get("approvers") or [])) or None),
            ("Requested", info.get("requested_at")), ("Deadline", info.get("deadline"))]
    details = info.get("details")
    body = f"<h1>{escape(str(info['title']))}</h1>"
    if info.get("description"):
        body += f"<p>{escape(str(info['description']))}</p>"
    body += "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows if v) + "</dl>"
    if details is not None:
        details = json.dumps(finite(details), indent=2, ensure_ascii=False)  # never NaN or Infinity
        body += f"<h2>Details</h2><pre>{escape(details)}</pre>"
    if note:
        body += f"<p><strong>{escape(note)}</strong></p>"
    body += (
        '<form method="post"><input type="hidden" name="csrf" value="' + escape(csrf) + '">'
        '<p><label for="comments">Comments (optional)</label><br>'
        '<textarea id="comments" name="comments" maxlength="10000"></textarea></p>'
        + "".join(f'<button type="submit" name="decision" value="{escape(value)}">{escape(label)}</button>'
                  for value, label in choices) + "</form>"
    )
    return _page(str(info["title"]), body)


def message_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
