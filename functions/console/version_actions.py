"""The console's action on a workflow version: deprecate it (new runs of it are refused, running ones go
on), as `POST /workflows/{id}/versions/{v}/deprecate` does (docs/versions.md).

The version page shows the form while the version is not deprecated; its post is checked as every
console action is (guard.checked_form; the token is bound to ``ID@VERSION`` and the action), audited as
the API audits it (AuditAction.DEPRECATE, the target ``ID@VERSION``, the reason), and answered 303 back
to the version's page. Deprecating a deprecated version changes nothing and is answered as the API
answers it (the first deprecation's time and reason stay); no such version is a 404 page.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from functions.api.history import MAX_TEXT, audited
from functions.api.workflow_routes import _named
from infra.clock import iso
from infra.engine import Engine
from infra.service import ApiError
from statemachine.history import AuditAction
from statemachine.versions import UnknownVersion, WorkflowVersion

from .guard import checked_form, csrf_token
from .layout import PageError, esc, href, link, redirect

DEPRECATE = "deprecate"


def deprecate_form(engine: Engine, actor: str, entry: WorkflowVersion, root: str) -> str:
    """The form that deprecates ``entry`` (none once it is deprecated)."""
    if entry.deprecated:
        return ""
    ref = f"{entry.workflow_id}@{entry.version}"
    token = csrf_token(engine.signer, actor, ref, DEPRECATE)
    action = href(root, "console", "workflows", entry.workflow_id, "versions", entry.version, DEPRECATE)
    return (f'<div class="actions"><form class="action" data-action="{DEPRECATE}" method="post" action="{action}">'
            f'<input type="hidden" name="csrf" value="{esc(token)}">'
            f'<label>reason <input name="reason" maxlength="{MAX_TEXT}" required placeholder="why"></label>'
            f'<button type="submit" name="do" value="{DEPRECATE}">Deprecate {esc(entry.version)}</button>'
            '</form></div>')


def deprecate(event: APIGatewayProxyEvent, engine: Engine, actor: str, workflow_id: str, version: str,
              root: str) -> Response:
    ref = f"{workflow_id}@{version}"
    form = checked_form(event, engine.signer, actor, ref, DEPRECATE)
    reason = (form.get("reason") or "").replace("\r\n", "\n").strip()  # browsers send \r\n
    if len(reason) > MAX_TEXT:
        raise PageError(400, "The reason is too long", f"a reason is at most {MAX_TEXT} characters")

    def act() -> Response:
        try:
            _named(workflow_id, version)  # the API's check: no key the store cannot hold
            entry = engine.plans.deprecate(workflow_id, version, iso(engine.clock.now()), reason)
        except (ApiError, UnknownVersion) as error:
            raise PageError(404, "No such version", str(error)) from None
        flash = f"Deprecated {ref}" + (f" (reason: {entry.deprecation})" if entry.deprecation else "")
        return redirect(link(root, "console", "workflows", workflow_id, query={"version": version, "flash": flash}))
    return audited(event, AuditAction.DEPRECATE, ref, reason, act, by=actor)
