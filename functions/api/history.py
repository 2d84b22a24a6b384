"""The API's history routes and the audit log of operator actions (statemachine/history.py).

``audited`` wraps an operator's action: whatever its answer (applied, refused, not found), one
audit entry is put with who asked (the IAM principal API Gateway authenticated; under `loopline
dev` the local user), from where (source IP, user agent), when, and why. One write per request,
made by the API: a request is not a transition's hot path.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Callable

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api import schemas as doc
from infra.clock import iso
from infra.json_http import dumps
from infra.service import ApiError
from infra.wiring import get_engine, get_history
from statemachine.history import (
    MAX_PAGE,
    AuditAction,
    AuditEntry,
    encode_action,
    encode_entry,
    valid_cursor,
)

router = Router()
MAX_TEXT = 1000  # an actor's name, a reason: cut to this when kept
_ACTOR = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def _json(status: int, body) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


def actor(event) -> str:
    """Who made the request: the IAM principal (AWS_IAM authorization), else the local user the dev
    server names, else "anonymous" (an unauthenticated route: a link's holder)."""
    identity = event.request_context.identity
    return (identity.user_arn or identity.user or "anonymous")[:MAX_TEXT]


def audited(event, action: AuditAction, target: str | Callable[[], str], reason: str | Callable[[], str],
            act: Callable[[], Response], by: str | None = None) -> Response:
    """Run ``act`` and keep an audit entry of it, with the status it was answered with. ``target``: what
    it was about, or how to tell once it has run (a started run's id); ``reason`` the same (a
    registration's overridden breaking changes are known once it has run). ``by``: who asked, where the
    request's IAM identity does not say (the console's signed-in user: its authorizer names them)."""
    status = 500
    try:
        response = act()
        status = response.status_code
        return response
    except Exception as error:  # ApiError, LinkError: the status it will be answered with
        status = getattr(error, "status", 500)
        raise
    finally:
        identity = event.request_context.identity
        get_history().record_action(AuditEntry(
            at=iso(get_engine().clock.now()), request_id=event.request_context.request_id or "", action=action,
            actor=(by or actor(event))[:MAX_TEXT], source_ip=identity.source_ip or "",
            user_agent=(identity.user_agent or "")[:MAX_TEXT],
            target=(target if isinstance(target, str) else target())[:MAX_TEXT],
            reason=(reason if isinstance(reason, str) else reason())[:MAX_TEXT],
            outcome=status))


def rewind_reason(to: str, reason: str) -> str:
    """A rewind's audit reason, as the API and the console keep it: the task it goes back to, and why."""
    return f"to {to}" + (f": {reason}" if reason else "")


def migrate_reason(to: str, dry_run: bool, reason: str) -> str:
    """A migration's audit reason, as the API and the console keep it: the version, a dry run, and why."""
    why = ("dry run" if dry_run else "") + ("; " if dry_run and reason else "") + reason
    return f"to {to}" + (f": {why}" if why else "")


def _limit(event) -> int:
    text = event.get_query_string_value("limit")
    if text is None:
        return 100
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def _cursor(event) -> str | None:
    text = event.get_query_string_value("cursor")
    if text is not None and not valid_cursor(text):
        raise ApiError(400, "cursor is not one this API gave out (take it from a page's 'cursor')")
    return text


def _since(event) -> str | None:
    text = event.get_query_string_value("since")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "since must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ApiError(400, "since must name its time zone, e.g. 2026-01-31T12:00:00Z")
    return iso(moment)


@router.get("/runs/<run_id>/history", **doc.route("A run's history: every change of it and its tasks, oldest first",
                                                  (200, doc.HistoryPage), errors=(400, 404), tags=("history",)))
def run_history(run_id: str):
    event = router.current_event
    cursor, limit = _cursor(event), _limit(event)
    page = get_history().of_run(run_id, cursor, limit)
    if not page.items and cursor is None and get_engine().store.get_run(run_id) is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    return _json(200, {"run_id": run_id, "entries": [encode_entry(e) for e in page.items], "next_cursor": page.cursor})


@router.get("/audit", **doc.route("Operators' actions, oldest first", (200, doc.AuditPage), errors=(400,),
                                  tags=("history",),
                                  query=(("actor", "only this actor's"), ("action", "only this action"),
                                         ("since", "ISO-8601 with its zone"), ("cursor", "next_cursor of a page"),
                                         ("limit", "1 to 500, default 100"))))
def audit_log():
    event = router.current_event
    who = event.get_query_string_value("actor")
    if who is not None and not _ACTOR.match(who):
        raise ApiError(400, "actor must be 1 to 200 printable characters")
    action_text = event.get_query_string_value("action")
    if action_text is not None and action_text not in {a.value for a in AuditAction}:
        raise ApiError(400, f"action must be one of {', '.join(a.value for a in AuditAction)}")
    page = get_history().actions(who, AuditAction(action_text) if action_text else None, _since(event),
                                 _cursor(event), _limit(event))
    return _json(200, {"entries": [encode_action(e) for e in page.items], "next_cursor": page.cursor})


def reason_of(body: dict | None) -> str:
    """The optional ``reason`` of an operator's request body (request_body.py read it as an object)."""
    reason = body.get("reason") if body is not None else None
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "'reason' must be a string")
    if reason is not None and len(reason) > MAX_TEXT:
        raise ApiError(400, f"'reason' must be at most {MAX_TEXT} characters")
    return reason or ""
