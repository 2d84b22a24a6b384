"""The console's actions on a run (cancel, pause, resume, redrive) and on an approval (decide in an
approver's name): the forms a page shows, and what a form post does (rewind and migrate, whose forms
ask for more, are run_operations.py's; deprecating a version is version_actions.py's).

Each post is checked (guard.py: same site, and a CSRF token bound to the actor, the target and the
action) before anything is read or changed, applied through the engine as the API's routes apply it,
kept in the audit log with its reason as the API keeps it (functions/api/history.audited), and
answered 303 back to the run's page (or the inbox) with what happened in a ``flash`` query value.
A refused action (a run that has ended, a paused run asked to pause) is an error page with the API's
status (404, 409), and is audited with that status too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from functions.api.history import MAX_TEXT, audited
from infra.engine import Engine, LinkError
from statemachine.history import AuditAction
from statemachine.status import RunStatus

from . import run_operations
from .guard import checked_form, csrf_token
from .layout import PageError, esc, href, link, redirect


@dataclass(frozen=True)
class RunAction:
    label: str
    audit: AuditAction
    applies: frozenset[str]  # the run statuses it is offered in
    apply: Callable[[Engine, str, str], dict[str, Any] | None]  # (engine, run id, reason) -> the engine's result


RUN_ACTIONS: dict[str, RunAction] = {
    "cancel": RunAction("Cancel", AuditAction.CANCEL, frozenset({RunStatus.RUNNING, RunStatus.PAUSED}),
                        lambda engine, run_id, reason: engine.cancel_run(run_id, reason or None)),
    "pause": RunAction("Pause", AuditAction.PAUSE, frozenset({RunStatus.RUNNING}),
                       lambda engine, run_id, _reason: engine.pause_run(run_id)),
    "resume": RunAction("Resume", AuditAction.RESUME, frozenset({RunStatus.PAUSED}),
                        lambda engine, run_id, _reason: engine.resume_run(run_id)),
    "redrive": RunAction("Redrive", AuditAction.REDRIVE, frozenset({RunStatus.FAILED}),
                         lambda engine, run_id, _reason: engine.redrive_run(run_id)),
}
DECIDE = "decide"


def run_action_forms(engine: Engine, actor: str, run_id: str, status: str, root: str) -> str:
    """The forms of the actions that apply to a run in ``status`` (none once it has ended, but redrive)."""
    forms = []
    for name, action in RUN_ACTIONS.items():
        if status not in action.applies:
            continue
        token = csrf_token(engine.signer, actor, run_id, name)
        reason = (f'<label>reason <input name="reason" maxlength="{MAX_TEXT}" '
                  f'{"required " if name == "cancel" else ""}placeholder="why"></label>')
        forms.append(f'<form class="action" data-action="{name}" method="post" '
                     f'action="{href(root, "console", "runs", run_id, name)}">'
                     f'<input type="hidden" name="csrf" value="{esc(token)}">{reason}'
                     f'<button type="submit" name="do" value="{name}">{esc(action.label)}</button></form>')
    return f'<div class="actions">{"".join(forms)}</div>' if forms else ""


def decide_form(engine: Engine, actor: str, approval: Mapping[str, Any], approvers: list[str], root: str) -> str:
    run_id, task_id = approval["run_id"], approval["task_id"]
    token = csrf_token(engine.signer, actor, f"{run_id}/{task_id}", DECIDE)
    options = "".join(f'<option value="{esc(a)}">{esc(a)}</option>' for a in approvers)
    return (f'<form class="decide" method="post" action="{href(root, "console", "approvals", run_id, task_id)}">'
            f'<input type="hidden" name="csrf" value="{esc(token)}">'
            f'<label>as <select name="approver">{options}</select></label>'
            f'<label>comments <textarea name="comments" maxlength="10000"></textarea></label>'
            f'<button type="submit" name="decision" value="APPROVED">Approve</button>'
            f'<button type="submit" name="decision" value="REJECTED">Reject</button></form>')


def run_action(event: APIGatewayProxyEvent, engine: Engine, actor: str, run_id: str, name: str,
               root: str) -> Response:
    if name in run_operations.OFFERED:  # rewind, migrate
        return run_operations.operate(event, engine, actor, run_id, name, root)
    action = RUN_ACTIONS.get(name)
    if action is None:
        raise PageError(404, "No such action",
                        f"the console's actions are {', '.join([*RUN_ACTIONS, *run_operations.OFFERED])}")
    form = checked_form(event, engine.signer, actor, run_id, name)
    reason = (form.get("reason") or "").replace("\r\n", "\n").strip()
    if len(reason) > MAX_TEXT:
        raise PageError(400, "The reason is too long", f"a reason is at most {MAX_TEXT} characters")

    def act() -> Response:
        result = action.apply(engine, run_id, reason)
        if result is None:
            raise PageError(404, "No such run", f"there is no run with id '{run_id}'")
        if not result.get("changed", result.get("cancelled")):
            why = result.get("reason") or f"it is {result['status']}"
            raise PageError(409, f"The run cannot be {_past(name)}", f"run '{run_id}' cannot be {_past(name)}: {why}")
        flash = f"{action.label}: done" + (f" (reason: {reason})" if reason else "")
        return redirect(link(root, "console", "runs", run_id, query={"flash": flash}))
    return audited(event, action.audit, run_id, reason, act, by=actor)


def decide(event: APIGatewayProxyEvent, engine: Engine, actor: str, run_id: str, task_id: str,
           root: str) -> Response:
    form = checked_form(event, engine.signer, actor, f"{run_id}/{task_id}", DECIDE)
    decision, approver = form.get("decision"), form.get("approver")
    comments = (form.get("comments") or "").replace("\r\n", "\n") or None  # browsers send \r\n
    why = f"{decision!s:.20} on {task_id} for {approver!s:.200}"

    def act() -> Response:
        try:
            engine.decide_for(run_id, task_id, decision, comments, approver)
        except LinkError as error:  # 400 a bad decision, 403 not an approver, 404, 409 decided, 410 expired
            raise PageError(error.status, "The decision was not recorded", error.message) from None
        flash = f"{decision} by {approver} on {task_id} of run {run_id}"
        return redirect(link(root, "console", "approvals", query={"flash": flash}))
    return audited(event, AuditAction.DECIDE, run_id, why, act, by=actor)


def _past(name: str) -> str:
    return {"cancel": "cancelled", "pause": "paused", "resume": "resumed", "redrive": "redriven"}[name]
