"""Migration's routes (docs/versions.md): move one run, or every run of a version, to another version of its
workflow. A router the api handler includes (app.py); each request is audited as the run-control actions are
(a dry run too: it reads every task of the run)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api import schemas as doc
from functions.api.history import audited, migrate_reason, reason_of
from functions.api.request_body import json_object
from functions.api.workflow_routes import _named
from infra.json_http import dumps
from infra.service import ApiError
from infra.wiring import get_engine
from statemachine.history import AuditAction
from statemachine.versions import UnknownVersion, parse_ref

router = Router()


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


def _asked() -> tuple[str, bool, str]:
    """(to, dry_run, reason) of a migration's body; a 400 for anything else."""
    body = json_object(router.current_event.body, '{"to": "ID@VERSION", "dry_run": false}')
    to, dry_run = body.get("to"), body.get("dry_run", False)
    if not isinstance(to, str) or "@" not in to:
        raise ApiError(400, "'to' must name the version to move to: ID@VERSION")
    if not isinstance(dry_run, bool):
        raise ApiError(400, "'dry_run' must be true or false")
    workflow_id, version = parse_ref(to)
    _named(workflow_id, version or "latest")
    return to, dry_run, reason_of(body)


@router.post("/runs/<run_id>/migrate", **doc.route(
    "Move a running run to another version of its workflow", (202, doc.MigrationResult), errors=(400, 404, 409),
    tags=("runs",), request=doc.body(doc.MigrateRequest), also_ok=(200, "a dry run: what it would do")))
def migrate_run(run_id: str):
    to, dry_run, reason = _asked()

    def migrate():
        try:
            result = get_engine().migrate_run(run_id, to, dry_run, reason)
        except UnknownVersion as error:
            raise ApiError(404, str(error)) from None
        if result is None:
            raise ApiError(404, f"no run with id '{run_id}'")
        if not result["allowed"]:
            raise ApiError(409, f"run '{run_id}' cannot be migrated to {to}", run_id=run_id,
                           run_status=result["status"], report=result["report"], lines=result["lines"])
        return _json(200 if dry_run else 202, result)  # queued: the worker moves the run
    return audited(router.current_event, AuditAction.MIGRATE, run_id, migrate_reason(to, dry_run, reason), migrate)


@router.post("/workflows/<workflow_id>/versions/<version>/migrate", **doc.route(
    "Move every run of a version that has not ended to another version", (202, doc.BulkMigrationResult),
    errors=(400, 404), tags=("workflows",), request=doc.body(doc.MigrateRequest),
    also_ok=(200, "a dry run: what it would do with each run")))
def migrate_version(workflow_id: str, version: str):
    to, dry_run, reason = _asked()

    def migrate():
        _named(workflow_id, version)
        if parse_ref(to)[0] != workflow_id:
            raise ApiError(400, f"'to' must be a version of '{workflow_id}'")
        try:
            runs = get_engine().migrate_version(workflow_id, version, to, dry_run, reason)
        except UnknownVersion as error:
            raise ApiError(404, str(error)) from None
        return _json(200 if dry_run else 202, {"workflow_id": workflow_id, "version": version, "to": to,
                                               "dry_run": dry_run, "runs": runs})
    return audited(router.current_event, AuditAction.MIGRATE, f"{workflow_id}@{version}",
                   f"every run {migrate_reason(to, dry_run, reason)}", migrate)
