"""API: start and inspect runs, approval pages and decisions, callbacks (API Gateway REST proxy)."""

import os
import re

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from functions.api import front_door_routes, graph_routes, migration_routes, openapi, pages, run_routes, workflow_routes
from functions.api import schemas as doc
from functions.api.history import actor, audited, reason_of, rewind_reason, router
from functions.api.pages import PAGE_HEADERS as _PAGE_HEADERS
from functions.api.pages import html as _html
from functions.api.request_body import json_object, json_value, optional_json_object
from infra.engine import LinkError
from infra.json_http import NOSNIFF, STATE_CHANGING, dumps, is_json_type, media_type
from infra.listing_params import BadQuery
from infra.service import ApiError, start_from_request
from infra.wiring import get_engine
from statemachine.history import AuditAction

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()


def _json(status: int, body) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


_FORM = "application/x-www-form-urlencoded"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The approval page's own form (CSRF-checked), and the same page shown by seed 000's resume link.
_FORM_ROUTES = frozenset({"/approvals/{token}", front_door_routes.RESUME})


def _content_type() -> str:
    return app.current_event.headers.get("Content-Type") or ""


def _json_only(router, next_middleware):
    """Every state-changing request is JSON: a browser cannot send that cross-site without a CORS
    preflight (which this API never grants), whereas text/plain, form posts and beacons it sends
    freely. The one exception is the approval page's own form post, which carries a CSRF value."""
    event = router.current_event
    if event.http_method in STATE_CHANGING and not is_json_type(_content_type()) and not (
            media_type(_content_type()) == _FORM and event.get("resource") in _FORM_ROUTES) and not (
            front_door_routes.bodiless_start(event, _content_type()) or graph_routes.bodiless_resume(
                event, _content_type())):
        return _json(415, {"error": "send the body as application/json", "content_type": _content_type()[:100]})
    return next_middleware(router)


app.use(middlewares=[_json_only])
app.include_router(run_routes.router)  # GET /runs, GET /runs/counts, a loop's iterations
app.include_router(router)  # GET /runs/{id}/history, GET /audit (functions/api/history.py)
app.include_router(workflow_routes.router)  # the registry: /workflows... (docs/versions.md)
app.include_router(front_door_routes.router)  # seed 000's /workflow/start, /resume, /status (docs/api.md)
app.include_router(migration_routes.router)  # POST /runs/{id}/migrate, a version's runs (docs/versions.md)
app.include_router(graph_routes.router)  # seed 004's /graph/create, /run, /resume, /state (docs/graph-form.md)


def _parsed():
    return json_value(app.current_event.body)


def _optional_body() -> dict | None:
    """An operator action's optional body: none at all, or a JSON object."""
    return optional_json_object(app.current_event.body, '{"reason": "..."}')


def _body() -> dict:
    return json_object(app.current_event.body)


def _links_in_views() -> bool:
    """Whether GET /runs/{id} and GET /approvals carry the links' urls. On AWS they do not
    (template.yaml): reading a run must not hand out the means to decide it, so the urls are
    served by GET /runs/{id}/links alone and IAM can grant one without the other. The local
    runtime turns it on: the dev server's contract shows the links in the run."""
    return os.environ.get("LOOPLINE_LINKS_IN_VIEWS", "").strip().lower() == "true"


def _without_urls(entries: list[dict]) -> list[dict]:
    return entries if _links_in_views() else [{k: v for k, v in e.items() if k != "url"} for e in entries]


def _wants_html() -> bool:
    return pages.wants_html(app.current_event.headers)


@app.exception_handler(ApiError)
def _api_error(error: ApiError):
    return _json(error.status, {"error": error.message, **error.extra})


@app.exception_handler(BadQuery)
def _bad_query(error: BadQuery):
    """A query parameter the run listing cannot take (infra/listing_params.py), from any route."""
    return _json(400, {"error": str(error)})


@app.not_found
def _not_found(_error=None):
    # One error shape for every 4xx, also when no route matches (e.g. a mangled link).
    return _json(404, {"error": "not found"})


@app.exception_handler(LinkError)
def _link_error(error: LinkError):
    if _wants_html():
        title = "Your decision was not recorded" if error.status in (400, 413) else "This link cannot be used"
        return _html(error.status, pages.message_page(title, error.message))
    return _json(error.status, {"error": error.message})


def _audited(action: AuditAction, target: str, reason: str, act):
    return audited(app.current_event, action, target, reason, act)


@app.post("/runs", **doc.route("Start a run", (201, doc.RunStarted), errors=(400, 404, 409), tags=("runs",),
                                 request=doc.body(doc.StartRunRequest)))
def start_run():
    body = _body()
    started: dict = {}

    def start():
        started.update(start_from_request(get_engine(), body))
        return _json(201, started)
    # The run started (its workflow), or the workflow asked for when none did.
    return _audited(AuditAction.START, lambda: f"{started['run_id']} ({started['workflow_id']})" if started
                    else _asked(body.get("workflow")), "", start)


def _asked(workflow) -> str:
    return workflow if isinstance(workflow, str) and "\n" not in workflow else "(a workflow sent inline)"


def _base_url() -> str:
    # On AWS the API cannot be told its own URL without a template cycle: take it from the request.
    context = app.current_event.request_context
    return f"https://{context.domain_name}/{context.stage}"


@app.get("/runs/<run_id>", **doc.route("A run: its status, tasks, outputs and pending links", (200, doc.RunView),
                                        errors=(404,), tags=("runs",)))
def get_run(run_id: str):
    view = get_engine().describe_run(run_id, base_url=_base_url())
    if view is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    return _json(200, {**view, "approvals": _without_urls(view["approvals"]),
                       "callbacks": _without_urls(view["callbacks"])})


@app.get("/runs/<run_id>/links", **doc.route("A run's live approval and callback links", (200, doc.RunLinks),
                                              errors=(404,), tags=("runs",)))
def get_run_links(run_id: str):
    """The live approval and callback links of a run: whoever may call this may decide them."""
    view = get_engine().describe_run(run_id, base_url=_base_url())
    if view is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    return _json(200, {"run_id": run_id, "approvals": view["approvals"], "callbacks": view["callbacks"]})


@app.post("/runs/<run_id>/cancel", **doc.route("Cancel a run", (202, doc.CancelResult), errors=(400, 404, 409),
                                                tags=("runs",),
           request=doc.body(doc.ReasonRequest, required=False)))
def cancel_run(run_id: str):
    reason = reason_of(_optional_body())  # optional: {"reason": "..."}, kept in the audit log and the run's history

    def cancel():
        result = get_engine().cancel_run(run_id, reason or None)
        if result is None:
            raise ApiError(404, f"no run with id '{run_id}'")
        if not result["cancelled"]:
            raise ApiError(409, f"run '{run_id}' has already ended ({result['status']}) or is stopping",
                           run_status=result["status"])
        return _json(202, result)
    return _audited(AuditAction.CANCEL, run_id, reason, cancel)


@app.post("/runs/<run_id>/pause", **doc.route("Pause a running run", (202, doc.ControlResult), errors=(400, 404, 409),
                                               tags=("runs",),
           request=doc.body(doc.ReasonRequest, required=False)))
def pause_run(run_id: str):
    return _audited(AuditAction.PAUSE, run_id, reason_of(_optional_body()),
                    lambda: _run_control(run_id, get_engine().pause_run(run_id), "running"))


@app.post("/runs/<run_id>/resume", **doc.route("Resume a paused run", (202, doc.ControlResult), errors=(400, 404, 409),
                                                tags=("runs",),
           request=doc.body(doc.ReasonRequest, required=False)))
def resume_run(run_id: str):
    return _audited(AuditAction.RESUME, run_id, reason_of(_optional_body()),
                    lambda: _run_control(run_id, get_engine().resume_run(run_id), "paused"))


@app.post("/runs/<run_id>/redrive", **doc.route("Resume a FAILED run from its failed tasks", (202, doc.ControlResult),
                                                 errors=(400, 404, 409), tags=("runs",),
           request=doc.body(doc.ReasonRequest, required=False)))
def redrive_run(run_id: str):
    def redrive():
        result = get_engine().redrive_run(run_id)
        if result is None:
            raise ApiError(404, f"no run with id '{run_id}'")
        if not result["changed"]:
            raise ApiError(409, f"run '{run_id}' cannot be redriven: {result['reason']}",
                           run_status=result["status"])
        return _json(202, result)  # queued: GET /runs/{id} shows it RUNNING once the worker has reopened it
    return _audited(AuditAction.REDRIVE, run_id, reason_of(_optional_body()), redrive)


@app.post("/runs/<run_id>/rewind", **doc.route("Reopen a run, ended or not, from just before one of its tasks",
                                                (202, doc.RewindResult), errors=(400, 404, 409), tags=("runs",),
           request=doc.body(doc.RewindRequest)))
def rewind_run(run_id: str):
    body = _body()
    to, reason = body.get("to"), reason_of(body)
    if not isinstance(to, str) or not to:
        raise ApiError(400, "'to' must be the id of the task to rewind to")
    compensate = body.get("compensate", False)
    if not isinstance(compensate, bool):
        raise ApiError(400, "'compensate' must be true or false")
    iteration = body.get("iteration")
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0):
        raise ApiError(400, "'iteration' must be the number of an iteration of the task's loop (0 or more)")

    def rewind():
        result = get_engine().rewind_run(run_id, to, actor(app.current_event), reason, compensate, iteration)
        if result is None:
            raise ApiError(404, f"no run with id '{run_id}'")
        if not result["changed"]:
            raise ApiError(result["code"], f"run '{run_id}' cannot be rewound to '{to}': {result['reason']}",
                           run_status=result["status"])
        return _json(202, result)  # queued: GET /runs/{id} shows it RUNNING once the worker has reopened it
    return _audited(AuditAction.REWIND, run_id, rewind_reason(to, reason, iteration), rewind)


def _run_control(run_id: str, result, needed: str):
    if result is None:
        raise ApiError(404, f"no run with id '{run_id}'")
    if not result["changed"]:
        raise ApiError(409, f"run '{run_id}' is {result['status']}, not {needed}", run_status=result["status"])
    return _json(202, result)


@app.get("/approvals", **doc.route("Approvals waiting for a decision", (200, doc.ApprovalList), tags=("approvals",),
                                   query=(("run", "only this run's"), ("approver", "only this approver's"))))
def list_approvals():
    # An empty filter (?run=) filters nothing, as if absent: "" is no run id (DynamoDB refuses it as a key).
    run, approver = (app.current_event.get_query_string_value(name) or None for name in ("run", "approver"))
    return _json(200, {"approvals": _without_urls(get_engine().pending_approvals(run, approver,
                                                                                 base_url=_base_url()))})


@app.post("/runs/<run_id>/approvals/<task_id>", **doc.route(
    "Decide an approval in an approver's name", (200, doc.DecisionAccepted), errors=(400, 403, 404, 409, 410),
    tags=("approvals",), request=doc.body(doc.ApproverDecisionRequest)))
def decide_for_approver(run_id: str, task_id: str):
    body = _body()
    why = f"{body.get('decision')!s:.20} on {task_id} for {body.get('approver')!s:.200}"
    return _audited(AuditAction.DECIDE, run_id, why, lambda: _json(200, get_engine().decide_for(
        run_id, task_id, body.get("decision"), body.get("comments"), body.get("approver"))))


@app.get("/openapi.json", **doc.route("This document: the API in OpenAPI 3.1", (200, doc.OpenApiDocument),
                                      tags=("meta",)))
def openapi_document():
    server = get_engine().settings.public_url or _base_url()
    return Response(status_code=200, content_type="application/json", body=openapi.document(app, server))


@app.get("/approvals/<token>", **doc.route(
    "An approval link: the page (Accept: text/html) or the request as JSON", (200, doc.ApprovalInfo),
    errors=(404, 410), tags=("links",), signed=False, html=True))
def show_approval(token: str):
    engine = get_engine()
    if app.current_event.get_query_string_value("done"):
        # Only after this link's own decision (a used link): not for any token someone makes up.
        if not engine.link_was_used(token):
            raise LinkError(404, "unknown link")
        return _html(200, pages.message_page("Thank you", "Your decision has been recorded."))
    info = engine.approval_info(token)
    if _wants_html():
        return _html(200, pages.approval_page(info, engine.signer.csrf(token)))
    return _json(200, info)


@app.post("/approvals/<token>", **doc.route(
    "Decide by an approval link", (200, doc.DecisionAccepted), errors=(400, 403, 404, 409, 410), tags=("links",),
    signed=False, html=True, extra={303: "the page's form was taken: see ?done=1"},
    request=doc.body(doc.DecisionRequest, form=doc.DecisionForm)))
def decide_approval(token: str):
    engine = get_engine()
    if media_type(_content_type()) == _FORM:
        form = pages.checked_form(app.current_event.body, engine.signer.csrf(token))
        engine.decide(token, form.get("decision"), form["comments"] or None)
        # Relative, so the stage in front of the path (…/Prod/approvals/…) is kept on AWS.
        return Response(status_code=303, headers={"Location": "?done=1", **_PAGE_HEADERS}, body="")
    body = _body()  # JSON: the middleware let nothing else through
    return _json(200, engine.decide(token, body.get("decision"), body.get("comments"), body.get("approver"),
                                    body.get("data")))


@app.get("/callbacks/<token>", **doc.route("A callback link: what it waits for", (200, doc.CallbackInfo),
                                             errors=(404, 410), tags=("links",), signed=False))
def show_callback(token: str):
    return _json(200, get_engine().callback_info(token))


@app.post("/callbacks/<token>", **doc.route(
    "Complete a callback task with any JSON value", (200, doc.CallbackAccepted), errors=(400, 404, 410),
    tags=("links",), signed=False, request={"requestBody": {"content": {doc.JSON: {"schema": {}}}}}))
def post_callback(token: str):
    return _json(200, get_engine().submit_callback(token, _parsed()))  # any JSON value


@app.post("/runs/<run_id>/callbacks/<callback_id>", **doc.route(
    "Complete the callback a run waits for under its callback_id, with any JSON value", (200, doc.CallbackAccepted),
    errors=(400, 404, 409, 410), tags=("runs",), request={"requestBody": {"content": {doc.JSON: {"schema": {}}}}}))
def post_named_callback(run_id: str, callback_id: str):
    # The API's own route (authorized), not a link: a caller-chosen name is no secret.
    return _json(200, get_engine().submit_named_callback(run_id, callback_id, _parsed()))


@app.post("/runs/<run_id>/events/<name>", **doc.route(
    "Send an event, with any JSON value, to the tasks of a run waiting for it", (200, doc.EventAccepted),
    errors=(400, 404, 410), tags=("runs",), request={"requestBody": {"content": {doc.JSON: {"schema": {}}}}}))
def post_event(run_id: str, name: str):
    return _json(200, get_engine().send_event(run_id, name, _parsed()))


def with_nosniff(response: dict) -> dict:
    """Every answer tells the browser to trust its Content-Type, never to guess one."""
    if isinstance(response, dict):
        multi = response.get("multiValueHeaders")
        if isinstance(multi, dict):
            multi[NOSNIFF[0]] = [NOSNIFF[1]]
        else:
            response["headers"] = {**(response.get("headers") or {}), NOSNIFF[0]: NOSNIFF[1]}
    return response


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    if _CONTROL.search((event or {}).get("path") or ""):
        # The resolver's route patterns end in `$`, which also matches before a final newline:
        # "/approvals/%0A" would be answered by the IAM-only listing through the open link route.
        return with_nosniff({"statusCode": 404, "headers": {"Content-Type": "application/json"},
                             "body": dumps({"error": "not found"})})
    return with_nosniff(app.resolve(event, context))
