"""The approval page: plain, accessible HTML with every value escaped. No front-end build."""

from html import escape
from typing import Any

from infra.json_http import finite

_STYLE = """body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}
textarea{width:100%;min-height:6rem}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}
pre{background:#f4f4f4;padding:.5rem;overflow:auto}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{escape(title)}</title><style>{_STYLE}</style></head>'
            f"<body><main>{body}</main></body></html>")


def approval_page(info: dict[str, Any], csrf: str) -> str:
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
    body += (
        '<form method="post"><input type="hidden" name="csrf" value="' + escape(csrf) + '">'
        '<p><label for="comments">Comments (optional)</label><br>'
        '<textarea id="comments" name="comments" maxlength="10000"></textarea></p>'
        '<button type="submit" name="decision" value="APPROVED">Approve</button>'
        '<button type="submit" name="decision" value="REJECTED">Reject</button></form>'
    )
    return _page(str(info["title"]), body)


def message_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
