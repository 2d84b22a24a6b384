"""The registry's routes (docs/versions.md): register a version, list them, show one, deprecate one,
and the compatibility report between two. A router the api handler includes (app.py); an operator's
change (register, deprecate) is audited as the run-control actions are."""

from __future__ import annotations

import json
import re

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api import schemas as doc
from functions.api.history import audited, reason_of
from functions.api.request_body import json_object, optional_json_object
from infra.clock import iso, parse_iso
from infra.engine.plans import Registration
from infra.json_http import dumps
from infra.listing_params import WORKFLOW_ID
from infra.service import ApiError, compile_source
from infra.wiring import get_engine
from statemachine.history import AuditAction
from statemachine.versions import BreakingChange, UnknownVersion, VersionTaken

router = Router()
# What a registered id and version can look like (statemachine/dsl.py): anything else names no workflow,
# and is answered so before it reaches the store (a DynamoDB key has a size limit).
_VERSION = re.compile(r"^[0-9A-Za-z.+-]{1,128}$")


def _named(workflow_id: str, *versions: str) -> None:
    for version in versions:
        if not WORKFLOW_ID.match(workflow_id) or not _VERSION.match(version):
            raise ApiError(404, f"no workflow '{workflow_id[:200]}@{version[:200]}'")


def _json(status: int, body) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


def _body() -> dict:
    return json_object(router.current_event.body)


def _optional_body() -> dict | None:
    return optional_json_object(router.current_event.body)


@router.post("/workflows", **doc.route(
    "Register a workflow version", (201, doc.WorkflowRegistered), errors=(400, 409), tags=("workflows",),
    request=doc.body(doc.RegisterWorkflowRequest), also_ok=(200, "this content was registered before")))
def register_workflow():
    body = _body()
    allow_breaking = body.get("allow_breaking", False)
    if not isinstance(allow_breaking, bool):
        raise ApiError(400, "'allow_breaking' must be true or false")
    engine = get_engine()
    plan = compile_source(body.get("workflow"), engine.settings.limits, sandbox=engine.settings.sandbox)
    done: list[Registration] = []

    def register():
        try:
            registration = engine.register_workflow(plan, allow_breaking)
        except VersionTaken as error:
            raise ApiError(409, str(error), differences=error.differences) from None
        except BreakingChange as error:
            raise ApiError(409, str(error), report=error.report.to_json()) from None
        done.append(registration)
        report = registration.report.to_json() if registration.report else None
        return _json(201 if registration.created else 200,
                     {**registration.entry.to_json(), "created": registration.created, "report": report})

    def reason() -> str:
        # The override is kept here as in the version's record: which breaking changes it let through.
        allowed = done[0].entry.breaking if done and done[0].created else ()
        return f"hash {plan.hash}" + (f"; breaking changes allowed: {'; '.join(allowed)}" if allowed else "")
    return audited(router.current_event, AuditAction.REGISTER, f"{plan.workflow_id}@{plan.version}", reason,
                   register)


@router.get("/workflows", **doc.route("The registered workflows, every version", (200, doc.WorkflowList),
                                      tags=("workflows",)))
def list_workflows():
    return _json(200, {"workflows": [v.to_json() for v in get_engine().store.list_workflows()]})


@router.get("/workflows/<workflow_id>", **doc.route(
    "A registered workflow's plan (ID, ID@latest or ID@VERSION)", (200, doc.Plan), errors=(404,),
    tags=("workflows",)))
def show_workflow(workflow_id: str):
    name, _, version = workflow_id.partition("@")
    _named(name, version or "latest")
    engine = get_engine()
    plan = engine.find_workflow(workflow_id)
    if plan is None:
        raise ApiError(404, f"no workflow '{workflow_id}'")
    entry = engine.plans.version_of(workflow_id)
    # The body stays the plan as `loopline compile` prints it; a deprecated version (still shown by
    # ID@VERSION) says so in RFC 9745's Deprecation header, and GET /workflows gives the reason.
    deprecated_at = entry.deprecated_at if entry else None
    headers = {"Deprecation": f"@{int(parse_iso(deprecated_at).timestamp())}"} if deprecated_at else {}
    return Response(status_code=200, content_type="application/json", body=dumps(json.loads(plan.to_json())),
                    headers=headers)



@router.post("/workflows/<workflow_id>/versions/<version>/deprecate", **doc.route(
    "Deprecate a version: new runs of it are refused, running ones go on", (200, doc.WorkflowVersion),
    errors=(400, 404), tags=("workflows",), request=doc.body(doc.ReasonRequest, required=False)))
def deprecate_version(workflow_id: str, version: str):
    reason = reason_of(_optional_body())

    def deprecate():
        _named(workflow_id, version)
        engine = get_engine()
        try:
            entry = engine.plans.deprecate(workflow_id, version, iso(engine.clock.now()), reason)
        except UnknownVersion as error:
            raise ApiError(404, str(error)) from None
        return _json(200, entry.to_json())
    return audited(router.current_event, AuditAction.DEPRECATE, f"{workflow_id}@{version}", reason, deprecate)


@router.get("/workflows/<workflow_id>/diff", **doc.route(
    "The compatibility report between two versions", (200, doc.CompatibilityReport), errors=(400, 404),
    tags=("workflows",), query=(("from", "a version (required)"), ("to", "a version, or latest (the default)"))))
def diff_versions(workflow_id: str):
    event = router.current_event
    before, after = event.get_query_string_value("from"), event.get_query_string_value("to") or "latest"
    if not before:
        raise ApiError(400, "give the version to compare from: ?from=1.0.0 (and ?to=, latest by default)")
    if "@" in workflow_id:
        raise ApiError(400, "name the workflow by its id alone; the versions go in ?from= and ?to=")
    _named(workflow_id, before, after)
    try:
        report = get_engine().plans.diff(workflow_id, before, after)
    except UnknownVersion as error:
        raise ApiError(404, str(error)) from None
    return _json(200, report.to_json())
