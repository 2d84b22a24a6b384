"""Seed 000's front door (docs/api.md): start a registered workflow by name, decide its approval by
``/workflow/resume?token=&decision=``, read its status, in the seed's shapes. A router the api
handler includes (app.py). Nothing here decides anything of its own: a start is POST /runs's
(`start_from_request`), a decision is an approval link's (`engine.decide`, the link's token and its
page's anti-forgery value), and the status is GET /runs/{id}'s view, reshaped.

The seed names a run a "workflow" (its ``workflow_id`` is a run's id) and says DENIED where loopline
says REJECTED; both are translated here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from functions.api import pages
from functions.api import schemas as doc
from functions.api.history import audited
from functions.api.request_body import optional_json_object
from infra.json_http import dumps, media_type
from infra.service import ApiError, start_from_request
from infra.wiring import get_engine
from statemachine.history import AuditAction
from statemachine.status import RunStatus, TaskStatus

router = Router()
START = "/workflow/start/{name}"
RESUME = "/workflow/resume"
# The seed's decision words and loopline's: DENIED is loopline's REJECTED (REJECTED is taken as well).
DECISIONS = {"APPROVED": "APPROVED", "DENIED": "REJECTED", "REJECTED": "REJECTED"}
_LABELS = {"APPROVED": "Approve", "DENIED": "Deny", "REJECTED": "Reject"}
# A registered workflow's id, optionally @VERSION (statemachine/dsl.py): anything else names no workflow
# and is answered so before it reaches the store (a DynamoDB key has a size limit).
_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}(@[0-9A-Za-z.+-]{1,128})?$")


# ------------------------------------------------------------------ the shapes (GET /openapi.json)


class WorkflowStartRequest(doc.BaseModel):
    input: dict[str, Any] | None = Field(None, description="the run's input, checked against inputs.schema")


class WorkflowStarted(doc._Open):
    message: str
    workflow_id: str = Field(description="the new run's id (the seed's name for it); the same as run_id")
    status: RunStatus
    run_id: str
    workflow_name: str = Field(description="the registered workflow's id")


class SeedTask(doc._Open):
    task_id: str
    status: TaskStatus
    error: str | None = Field(None, description="the task's error as 'type: message', or null")


class WorkflowStatus(doc._Open):
    workflow_id: str = Field(description="the run's id")
    workflow_name: str = Field(description="the registered workflow's id")
    workflow_status: RunStatus
    tasks: list[SeedTask]


class ResumeInfo(doc.ApprovalInfo):
    decision: Literal["APPROVED", "DENIED", "REJECTED"] = Field(description="what a POST to this URL records")


class WorkflowResumed(doc._Open):
    message: str
    workflow_id: str = Field(description="the run's id")
    task_id: str
    status: TaskStatus = Field(description="the approval task's status once the decision is recorded")
    decision: Literal["APPROVED", "DENIED", "REJECTED"]
    outcome: str = Field(description="APPROVED, REJECTED, or PENDING while more decisions are needed")


class ResumeRequest(doc.BaseModel):
    comments: str | None = None


class ResumeForm(doc.BaseModel):
    """The confirmation page's own form post."""

    decision: Literal["APPROVED", "DENIED", "REJECTED"]
    comments: str | None = None
    csrf: str = Field(description="the value the confirmation page put in its form")


_LINK_QUERY = (("token", "the approval link's token (required)"),
               ("decision", "APPROVED or DENIED (required; REJECTED is taken as DENIED)"))


# ------------------------------------------------------------------ helpers


def _json(status: int, body) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


def _optional_body() -> dict:
    return optional_json_object(router.current_event.body) or {}


def bodiless_start(event, content_type: str) -> bool:
    """A start sent as the seed sends it (`requests.post(url)`: no body, no Content-Type) is taken: it
    carries nothing a browser could smuggle in a form, the route is IAM-signed on AWS, and locally the
    dev server refuses another origin's request before any handler runs (docs/security.md)."""
    return event.get("resource") == START and not content_type and not event.body


def _decision(word: Any) -> str:
    if word not in DECISIONS:
        raise ApiError(400, "decision must be APPROVED or DENIED")
    return word


def _link() -> tuple[str, str]:
    """The link's token and the seed's decision word, from the query."""
    event = router.current_event
    token, decision = event.get_query_string_value("token"), event.get_query_string_value("decision")
    if not token or not decision:
        raise ApiError(400, "Missing 'token' or 'decision' query parameter")
    return token, _decision(decision)


def _error_text(error: dict | None) -> str | None:
    return None if not error else f"{error.get('type')}: {error.get('message')}"


def seed_status(view: dict[str, Any]) -> dict[str, Any]:
    """A run's view (GET /runs/{id}) in the seed's status shape."""
    return {"workflow_id": view["run_id"], "workflow_name": view["workflow_id"], "workflow_status": view["status"],
            "tasks": [{"task_id": task_id, "status": task["status"], "error": _error_text(task.get("error"))}
                      for task_id, task in view["tasks"].items()]}


# ------------------------------------------------------------------ routes


@router.post("/workflow/start/<name>", **doc.route(
    "Start a registered workflow by name (ID or ID@VERSION): seed 000's start", (202, WorkflowStarted),
    errors=(400, 404, 409), tags=("workflow",), request=doc.body(WorkflowStartRequest, required=False)))
def start_by_name(name: str):
    body = _optional_body()
    started: dict = {}

    def start():
        if not _REF.match(name):
            raise ApiError(404, f"no registered workflow '{name[:200]}'")
        started.update(start_from_request(get_engine(), {"workflow": name, "input": body.get("input")}))
        return _json(202, {"message": "Durable workflow created", "workflow_id": started["run_id"],
                           "status": started["status"], "run_id": started["run_id"],
                           "workflow_name": started["workflow_id"]})
    return audited(router.current_event, AuditAction.START,
                   lambda: f"{started['run_id']} ({started['workflow_id']})" if started else name[:200], "", start)


@router.get("/workflow/status/<run_id>", **doc.route(
    "A run in seed 000's status shape", (200, WorkflowStatus), errors=(404,), tags=("workflow",)))
def workflow_status(run_id: str):
    view = get_engine().describe_run(run_id)
    if view is None:
        raise ApiError(404, "Workflow not found")
    return _json(200, seed_status(view))


@router.get(RESUME, **doc.route(
    "Seed 000's approval link: a confirmation page (Accept: text/html) or the request as JSON; never decides",
    (200, ResumeInfo), errors=(400, 404, 410), tags=("workflow",), signed=False, html=True, query=_LINK_QUERY))
def show_resume():
    token, decision = _link()
    engine = get_engine()
    info = engine.approval_info(token)  # an unknown or used link: LinkError, a 404 or 410 (app.py)
    if not pages.wants_html(router.current_event.headers):
        return _json(200, {**info, "decision": decision})
    note = f"Press {_LABELS[decision]} to record this decision ({decision})."
    return pages.html(200, pages.approval_page(info, engine.signer.csrf(token), ((decision, _LABELS[decision]),),
                                               note))


@router.post(RESUME, **doc.route(
    "Decide by seed 000's approval link", (200, WorkflowResumed), errors=(400, 403, 404, 409, 410),
    tags=("workflow",), signed=False, html=True, query=_LINK_QUERY,
    extra={303: "the confirmation page's form was taken: see the approval link's ?done=1"},
    request=doc.body(ResumeRequest, form=ResumeForm, required=False)))
def resume():
    token, decision = _link()
    engine = get_engine()
    form = None
    if media_type(router.current_event.headers.get("Content-Type") or "") == doc.FORM:
        form = pages.checked_form(router.current_event.body, engine.signer.csrf(token))
        decision = _decision(form.get("decision") or decision)  # the button pressed
        comments = form["comments"] or None
    else:
        comments = _optional_body().get("comments")  # JSON: the middleware let nothing else through
    accepted = engine.decide(token, DECISIONS[decision], comments)
    if form is not None:
        # Relative, so the stage in front of the path (…/Prod/workflow/resume) is kept on AWS.
        location = f"../approvals/{quote(token, safe='')}?done=1"
        return Response(status_code=303, headers={"Location": location, **pages.PAGE_HEADERS}, body="")
    view = engine.describe_run(accepted["run_id"]) or {"tasks": {}}
    task = view["tasks"].get(accepted["task_id"]) or {}
    return _json(200, {"message": "Workflow task resumed", "workflow_id": accepted["run_id"],
                       "task_id": accepted["task_id"], "status": task.get("status", "WAITING"),
                       "decision": decision, "outcome": accepted["outcome"]})
