"""The web console (API Gateway REST proxy): server-side HTML pages of the runs, a run, a task, the
approvals inbox and the workflow registry, and the form posts of its actions (docs/console.md).

This module routes and answers; the pages are built by their own modules from the engine's reads,
and the actions are checked and applied by actions.py. On AWS the console's routes sit behind the
console's authorizer (the signed-in user: guard.console_actor); under `loopline dev` the local user.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from infra.json_http import NOSNIFF
from infra.wiring import get_engine, get_history

from . import actions, version_actions
from .approvals_page import approvals_page
from .audit_page import audit_page
from .guard import console_actor
from .layout import HEADERS, PageError, error_page, html, root_of
from .run_page import run_page
from .runs_pages import runs_page
from .task_page import task_page
from .workflows_page import workflow_page, workflows_page

logger = Logger()
app = APIGatewayRestResolver()
STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _root() -> str:
    event = app.current_event
    return root_of(event.get("resource") or event.path, event.path or "")


def _actor() -> str:
    return console_actor(app.current_event)


def _params() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def _ok(text: str) -> Response:
    return html(200, text)


@app.exception_handler(PageError)
def _page_error(error: PageError) -> Response:
    return error_page(error.status, error.title, error.message, root=_root(), actor=_actor())


@app.not_found
def _not_found(_error=None) -> Response:
    return error_page(404, "Not found", "the console has no such page", root=_root(), actor=_actor())


@app.exception_handler(Exception)
def _internal(error: Exception) -> Response:
    # Logged with its traceback for the operator; the browser gets a page, never the traceback.
    logger.exception("console page failed")
    return error_page(500, "Something went wrong", "the console could not build this page; the error is logged",
                      root=_root(), actor=_actor())


@app.get("/")
def home() -> Response:
    # Relative: on AWS the stage (/Prod) is kept in front.
    return Response(status_code=302, headers={**HEADERS, "Location": "console"}, body="")


@app.get("/console")
def runs() -> Response:
    return _ok(runs_page(get_engine(), _params(), root=_root(), actor=_actor()))


@app.get("/console/runs/<run_id>")
def run(run_id: str) -> Response:
    return _ok(run_page(get_engine(), get_history(), unquote(run_id), _params(), root=_root(), actor=_actor()))


@app.get("/console/runs/<run_id>/tasks/<task_id>")
def task(run_id: str, task_id: str) -> Response:
    return _ok(task_page(get_engine(), unquote(run_id), unquote(task_id), _params(), root=_root(), actor=_actor()))


@app.get("/console/approvals")
def approvals() -> Response:
    return _ok(approvals_page(get_engine(), _params(), root=_root(), actor=_actor()))


@app.get("/console/workflows")
def workflows() -> Response:
    return _ok(workflows_page(get_engine(), root=_root(), actor=_actor()))


@app.get("/console/workflows/<workflow_id>")
def workflow(workflow_id: str) -> Response:
    return _ok(workflow_page(get_engine(), unquote(workflow_id), _params(), root=_root(), actor=_actor()))


@app.get("/console/static/<file>")
def static(file: str) -> Response:
    name = file
    if name not in STATIC_TYPES:  # only the files it ships: no path is ever built from the request
        raise PageError(404, "Not found", "the console has no such file")
    return Response(status_code=200, content_type=STATIC_TYPES[name], body=(STATIC / name).read_text("utf-8"),
                    headers={"Cache-Control": "max-age=300"})


@app.post("/console/runs/<run_id>/<action>")
def run_action(run_id: str, action: str) -> Response:
    return actions.run_action(app.current_event, get_engine(), _actor(), unquote(run_id), unquote(action), _root())


@app.post("/console/workflows/<workflow_id>/versions/<version>/deprecate")
def deprecate(workflow_id: str, version: str) -> Response:
    return version_actions.deprecate(app.current_event, get_engine(), _actor(), unquote(workflow_id),
                                     unquote(version), _root())


@app.get("/console/audit")
def audit() -> Response:
    params = _params()
    chosen = (app.current_event.multi_value_query_string_parameters or {}).get("action")
    if chosen:  # the form's multiple select sends action= once per chosen action
        params["action"] = ",".join(chosen)
    return _ok(audit_page(get_engine(), get_history(), params, root=_root(), actor=_actor()))


@app.post("/console/approvals/<run_id>/<task_id>")
def decide(run_id: str, task_id: str) -> Response:
    return actions.decide(app.current_event, get_engine(), _actor(), unquote(run_id), unquote(task_id), _root())


@logger.inject_lambda_context
def lambda_handler(event, context):
    if _CONTROL.search((event or {}).get("path") or ""):
        # A route pattern's `$` also matches before a final newline (as in functions/api/app.py).
        return {"statusCode": 404, "headers": {"Content-Type": "text/plain; charset=utf-8", NOSNIFF[0]: NOSNIFF[1]},
                "body": "not found"}
    response = app.resolve(event, context)
    response.setdefault("multiValueHeaders", {})[NOSNIFF[0]] = [NOSNIFF[1]]  # the browser must not guess a type
    return response
