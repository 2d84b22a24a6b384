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
from infra.listing_params import WORKFLOW_ID
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
_VERSION_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,127})@\S+$")
_GRAPH = re.compile(r"^graph [0-9a-f]{64} \((.+)\)$")
_RUN_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


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
        about = target if isinstance(target, str) else target()
        run_id, workflow_id = subject(about)
        get_history().record_action(AuditEntry(
            at=iso(get_engine().clock.now()), request_id=event.request_context.request_id or "", action=action,
            actor=(by or actor(event))[:MAX_TEXT], source_ip=identity.source_ip or "",
            user_agent=(identity.user_agent or "")[:MAX_TEXT],
            target=about[:MAX_TEXT], reason=(reason if isinstance(reason, str) else reason())[:MAX_TEXT],
            outcome=status, run_id=run_id, workflow_id=workflow_id))


def subject(target: str) -> tuple[str, str]:
    """The run and the workflow an action's target names, for GET /audit's ``run`` and ``workflow`` filters:
    ``wf@version`` (a registration, a deprecation, a migration of a version) is a workflow; ``graph HASH
    (wf)`` a graph's workflow; a run id (alone, or ``RUN (wf)`` as a start writes it) a run, whose workflow
    is read from the store; a bare workflow id that is no run (a start refused) that workflow."""
    version = _VERSION_REF.match(target)
    if version:
        return "", version.group(1)
    graph = _GRAPH.match(target)
    if graph:
        return "", graph.group(1)
    first = target.split(" ", 1)[0]
    run = get_engine().store.get_run(first) if first and len(first) <= 200 else None
    if run is not None:
        return first, run.workflow_id
    return "", target if WORKFLOW_ID.match(target) else ""


def rewind_reason(to: str, reason: str, iteration: int | None = None) -> str:
    """A rewind's audit reason, as the API and the console keep it: the task it goes back to (and the
    iteration asked, for a task of a loop's body), and why."""
    where = f" in iteration {iteration}" if iteration is not None else ""
    return f"to {to}{where}" + (f": {reason}" if reason else "")


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


@router.get("/runs/<run_id>/history", **doc.route("A run's history: every change of it and its tasks, oldest first",
                                                  (200, doc.HistoryPage), errors=(400, 404), tags=("history",)))
def run_history(run_id: str):
    event = router.current_event
    cursor, limit = _cursor(event), _limit(event)
    page = get_history().of_run(run_id, cursor, limit)
    if not page.items and cursor is None and get_engine().store.get_run(run_id) is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    return _json(200, {"run_id": run_id, "entries": [encode_entry(e) for e in page.items], "next_cursor": page.cursor})


def _time(event, name: str) -> str | None:
    text = event.get_query_string_value(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ApiError(400, f"{name} must name its time zone, e.g. 2026-01-31T12:00:00Z")
    return iso(moment)


def _actions(event) -> list[AuditAction]:
    """``action=``: one action, a comma-separated list, or the parameter repeated (any of them)."""
    given = (event.multi_value_query_string_parameters or {}).get("action") or []
    single = event.get_query_string_value("action")
    names = [n.strip() for text in (given or ([single] if single is not None else [])) for n in text.split(",")]
    known = {a.value for a in AuditAction}
    wrong = [n for n in names if n not in known]
    if wrong:
        raise ApiError(400, f"action must be one or more (comma-separated or repeated) of {', '.join(sorted(known))}; "
                            f"not {wrong[0][:50]!r}")
    return [AuditAction(n) for n in dict.fromkeys(names)]


@router.get("/audit", **doc.route("Operators' actions, oldest first", (200, doc.AuditPage), errors=(400,),
                                  tags=("history",),
                                  query=(("actor", "only this actor's"),
                                         ("action", "only these actions: one, a comma-separated list, or the "
                                                    "parameter repeated"),
                                         ("since", "ISO-8601 with its zone: at or after it"),
                                         ("until", "ISO-8601 with its zone: before it (exclusive)"),
                                         ("workflow", "only the actions about this workflow (its runs included)"),
                                         ("run", "only the actions about this run"),
                                         ("cursor", "next_cursor of a page"),
                                         ("limit", "1 to 500, default 100"))))
def audit_log():
    event = router.current_event
    who = event.get_query_string_value("actor")
    if who is not None and not _ACTOR.match(who):
        raise ApiError(400, "actor must be 1 to 200 printable characters")
    workflow = event.get_query_string_value("workflow")
    if workflow is not None and not WORKFLOW_ID.match(workflow):
        raise ApiError(400, "workflow must be a workflow id (a letter or _, then letters, digits or _)")
    run = event.get_query_string_value("run")
    if run is not None and not _RUN_ID.match(run):
        raise ApiError(400, "run must be a run id: 1 to 200 printable characters")
    since, until = _time(event, "since"), _time(event, "until")
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "until must be later than since")
    page = get_history().actions(who, _actions(event), since, _cursor(event), _limit(event), until=until,
                                 workflow_id=workflow, run_id=run)
    return _json(200, {"entries": [encode_action(e) for e in page.items], "next_cursor": page.cursor})


def reason_of(body: dict | None) -> str:
    """The optional ``reason`` of an operator's request body (request_body.py read it as an object)."""
    reason = body.get("reason") if body is not None else None
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "'reason' must be a string")
    if reason is not None and len(reason) > MAX_TEXT:
        raise ApiError(400, f"'reason' must be at most {MAX_TEXT} characters")
    return reason or ""
