"""The console's rewind and migrate of a run (docs/console.md): the run page's two forms, and what their
posts do, as `POST /runs/{id}/rewind` and `POST /runs/{id}/migrate` do.

Each post is checked as every console action is (guard.checked_form: a form, same site, a CSRF token
bound to the actor, the run and the action), applied through the engine, audited with the API's reason
text (functions/api/history.rewind_reason, migrate_reason), and refused with the API's status: 400 for
a bad form, 404 for no such run, task or version, and the engine's own refusal (409, or the rewind's
400/404 for a task that is no checkpoint) as an error page. Which runs get a form is only what the page
offers; the engine decides, and a form posted to a run that moved on is answered with its refusal.

- **Rewind** to one of the run's checkpoints (a task that ran to its end), optionally running the
  compensations of the tasks it discards first: 303 back to the run's page, which the worker reopens.
  A task of a loop's body is offered once its loop has ended (or the run has), with the iteration to
  reopen: a number, or blank for the last that ran (the API's ``iteration``).
- **Migrate** to another registered version of the run's workflow, with two buttons: a dry run answers a
  page with the planner's report and changes nothing; a migration answers 303 back to the run's page
  (the worker moves the run). A refused one (a task mid-attempt, a waiting task renamed...) is a 409
  page with the planner's report.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from functions.api.history import MAX_TEXT, audited, migrate_reason, rewind_reason
from functions.api.workflow_routes import _named
from infra.engine import Engine
from infra.engine.migration import MOVABLE
from infra.service import ApiError
from statemachine.history import AuditAction
from statemachine.plan import Plan
from statemachine.rewind import CHECKPOINTS
from statemachine.status import RUN_ENDED, TASK_ENDED, RunStatus
from statemachine.versions import UnknownVersion, parse_ref

from .guard import checked_form, csrf_token
from .layout import PageError, esc, href, html, json_block, link, page, redirect

REWIND, MIGRATE = "rewind", "migrate"
# The run statuses the run page offers each in: the one place to widen them. The engine's answer decides
# (a COMPENSATING run is refused a rewind: 409, and the page says why).
OFFERED: dict[str, frozenset[str]] = {REWIND: RUN_ENDED | {RunStatus.RUNNING, RunStatus.PAUSED},
                                      MIGRATE: frozenset(MOVABLE)}
MIGRATE_CHOICES = 50  # the newest versions the migrate form lists (the API takes any)
_BOOLEAN = {None: False, "": False, "false": False, "true": True, "on": True}  # "on": a checkbox without a value


def operation_forms(engine: Engine, actor: str, view: Mapping[str, Any], plan: Plan, root: str) -> str:
    """The rewind and migrate forms that apply to the run of ``view`` (none, one, or both)."""
    run_id, status = view["run_id"], view["status"]
    forms = []
    if status in OFFERED[REWIND]:
        forms.append(_rewind_form(engine, actor, run_id, checkpoints(view, plan), root))
    if status in OFFERED[MIGRATE]:
        forms.append(_migrate_form(engine, actor, run_id, plan, root))
    forms = [form for form in forms if form]
    return f'<div class="actions operations">{"".join(forms)}</div>' if forms else ""


def checkpoints(view: Mapping[str, Any], plan: Plan) -> list[tuple[str, str | None]]:
    """The run's tasks a rewind can go back to (statemachine/rewind.py), each with its loop (None: in the
    flow), in the plan's order: the flow tasks that ran to their end, and the body tasks whose last iteration
    ran them to their end (the view shows a body task's last iteration) in a loop that has ended, or in a run
    that has (a moving run's loop mid-iteration refuses a rewind into its body: statemachine/loop_rewind.py)."""
    tasks, ended = view["tasks"], view["status"] in RUN_ENDED

    def status(task_id: str) -> str | None:
        return (tasks.get(task_id) or {}).get("status")

    return [(node.id, node.loop_of) for node in plan.nodes.values()
            if node.role == "flow" and status(node.id) in CHECKPOINTS
            and (node.loop_of is None or ended or status(node.loop_of) in TASK_ENDED)]


def _opening(engine: Engine, actor: str, run_id: str, name: str, root: str) -> str:
    token = csrf_token(engine.signer, actor, run_id, name)
    return (f'<form class="action" data-action="{name}" method="post" '
            f'action="{href(root, "console", "runs", run_id, name)}">'
            f'<input type="hidden" name="csrf" value="{esc(token)}">')


def _reason_input() -> str:
    return f'<label>reason <input name="reason" maxlength="{MAX_TEXT}" placeholder="why"></label>'


def _rewind_form(engine: Engine, actor: str, run_id: str, choices: list[tuple[str, str | None]],
                 root: str) -> str:
    if not choices:  # nothing ran to its end: there is nothing to go back before
        return ""
    options = "".join(f'<option value="{esc(task)}">{esc(task)}{f" (in the loop {esc(loop)})" if loop else ""}'
                      '</option>' for task, loop in choices)
    iteration = ('<label>in iteration <input name="iteration" type="number" min="0" step="1" '
                 'placeholder="the last that ran"></label>' if any(loop for _, loop in choices) else "")
    return (f'{_opening(engine, actor, run_id, REWIND, root)}'
            f'<label>to just before <select name="to">{options}</select></label>{iteration}'
            '<label><input type="checkbox" name="compensate" value="true"> run the compensations of the '
            'tasks it discards first</label>'
            f'{_reason_input()}<button type="submit" name="do" value="{REWIND}">Rewind</button></form>')


def _migrate_form(engine: Engine, actor: str, run_id: str, plan: Plan, root: str) -> str:
    # A query of the workflow's versions, newest first (not the registry's scan: the page is asked for
    # again every few seconds while it is open), as many as a list can usefully show.
    versions = islice(engine.store.workflow_versions(plan.workflow_id), MIGRATE_CHOICES + 1)
    others = [entry for entry in versions if entry.version != plan.version][:MIGRATE_CHOICES]
    if not others:  # no other version to move to
        return ""
    options = "".join(
        f'<option value="{esc(plan.workflow_id)}@{esc(e.version)}">'
        f'{esc(e.version)}{" (deprecated)" if e.deprecated else ""}</option>' for e in others)
    return (f'{_opening(engine, actor, run_id, MIGRATE, root)}'
            f'<label>to version <select name="to">{options}</select></label>{_reason_input()}'
            '<button type="submit" name="dry_run" value="true">Dry run</button>'
            f'<button type="submit" name="dry_run" value="false">Migrate</button></form>')


def _reason(form: Mapping[str, str]) -> str:
    reason = (form.get("reason") or "").replace("\r\n", "\n").strip()  # browsers send \r\n
    if len(reason) > MAX_TEXT:
        raise PageError(400, "The reason is too long", f"a reason is at most {MAX_TEXT} characters")
    return reason


def _flag(form: Mapping[str, str], name: str) -> bool:
    value = form.get(name)
    if value not in _BOOLEAN:
        raise PageError(400, "This form cannot be taken", f"'{name}' must be true or false")
    return _BOOLEAN[value]


def operate(event: APIGatewayProxyEvent, engine: Engine, actor: str, run_id: str, name: str, root: str) -> Response:
    """A rewind or migrate form's post."""
    form = checked_form(event, engine.signer, actor, run_id, name)
    return (rewind if name == REWIND else migrate)(event, engine, actor, run_id, form, root)


def _iteration(form: Mapping[str, str]) -> int | None:
    """The form's iteration: blank (or left out) for the last that ran, else a whole number of 0 or more."""
    text = (form.get("iteration") or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise PageError(400, "This form cannot be taken",
                        "'iteration' must be the number of an iteration of the task's loop (0 or more), or blank")
    return int(text)


def rewind(event: APIGatewayProxyEvent, engine: Engine, actor: str, run_id: str, form: Mapping[str, str],
           root: str) -> Response:
    to, reason, compensate = form.get("to") or "", _reason(form), _flag(form, "compensate")
    if not to:
        raise PageError(400, "This form cannot be taken", "'to' must be the id of the task to rewind to")
    iteration = _iteration(form)

    def act() -> Response:
        result = engine.rewind_run(run_id, to, actor, reason, compensate, iteration)
        if result is None:
            raise PageError(404, "No such run", f"there is no run with id '{run_id}'")
        if not result["changed"]:
            raise PageError(result["code"], "The run cannot be rewound",
                            f"run '{run_id}' cannot be rewound to '{to}': {result['reason']}")
        where = f" in iteration {result['iteration']}" if "iteration" in result else ""
        flash = (f"Rewind to {result['to']}{where}: queued; {len(result['discarded'])} task(s) run again"
                 + (f", after the compensations of {', '.join(result['compensating'])}"
                    if result["compensating"] else "") + (f" (reason: {reason})" if reason else ""))
        return redirect(link(root, "console", "runs", run_id, query={"flash": flash}))
    return audited(event, AuditAction.REWIND, run_id, rewind_reason(to, reason, iteration), act, by=actor)


def migrate(event: APIGatewayProxyEvent, engine: Engine, actor: str, run_id: str, form: Mapping[str, str],
            root: str) -> Response:
    to, reason, dry_run = form.get("to") or "", _reason(form), _flag(form, "dry_run")
    if "@" not in to:
        raise PageError(400, "This form cannot be taken", "'to' must name the version to move to: ID@VERSION")
    workflow_id, version = parse_ref(to)
    try:
        _named(workflow_id, version or "latest")  # the API's check: no key the store cannot hold
    except ApiError as error:
        raise PageError(error.status, "No such version", error.message) from None

    def act() -> Response:
        try:
            result = engine.migrate_run(run_id, to, dry_run, reason)
        except UnknownVersion as error:
            raise PageError(404, "No such version", str(error)) from None
        if result is None:
            raise PageError(404, "No such run", f"there is no run with id '{run_id}'")
        if not result["allowed"]:
            return _report(409, f"Run {run_id} cannot be migrated to {to}", result, root, actor)
        if dry_run:
            return _report(200, f"Dry run: migrating run {run_id} to {to}", result, root, actor)
        flash = f"Migrate to {to}: queued" + (f" (reason: {reason})" if reason else "")
        return redirect(link(root, "console", "runs", run_id, query={"flash": flash}))
    return audited(event, AuditAction.MIGRATE, run_id, migrate_reason(to, dry_run, reason), act, by=actor)


def _report(status: int, title: str, result: Mapping[str, Any], root: str, actor: str) -> Response:
    """The planner's report as a page: what a dry run would do (200), or why the migration is refused (409)."""
    run_id = result["run_id"]
    heading = (f'<h1 class="error" data-status-code="{status}">' if status != 200 else "<h1>") + f"{esc(title)}</h1>"
    verdict = ("Nothing was changed: this was a dry run." if status == 200 and result["allowed"]
               else "Nothing was changed: the migration is refused for the reasons below.")
    body = (f'{heading}<p class="note">{esc(verdict)}</p>'
            f'<section id="migration" data-allowed="{str(bool(result["allowed"])).lower()}">'
            f'<pre class="report">{esc(chr(10).join(result["lines"]))}</pre>'
            f'<details><summary>the report as JSON</summary>{json_block(result["report"])}</details></section>'
            f'<p><a href="{href(root, "console", "runs", run_id)}">back to the run</a></p>')
    return html(status, page(title, body, root=root, actor=actor))
