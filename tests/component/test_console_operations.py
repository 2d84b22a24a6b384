"""The console's rewind, migrate and deprecate (functions/console/run_operations.py, version_actions.py),
through its Lambda handler on local mode's engine: each one done, refused with the engine's (or the
API's) status as an error page, refused before anything is read when forged or cross-site, and kept in
the audit log as the API keeps it."""

from __future__ import annotations

import re
from html import unescape

import pytest

from functions.console.run_operations import checkpoints
from infra.wiring import get_history
from statemachine.history import AuditAction
from tests.component.console_calls import FORGERIES, call, forged
from tests.component.test_console import CHAIN, RUN, _failed, _start, _token_for, _waiting
from tests.conftest import compile_yaml
from tests.unit.test_engine_errors import SAGA
from tests.unit.test_engine_migration import V1, V2
from tests.unit.test_engine_semantics import drive

ACTION = "/console/runs/{run_id}/{action}"
WORKFLOW = "/console/workflows/{workflow_id}"
DEPRECATE = "/console/workflows/{workflow_id}/versions/{version}/deprecate"
# order@3.0.0 renames the approval a waiting run waits on: a migration to it is refused.
V3 = V2.replace("    - id: review\n", "    - id: check\n      renamed_from: review\n").replace(
    "depends_on: [review]", "depends_on: [check]").replace('"2.0.0"', '"3.0.0"')


def _audit(action: AuditAction) -> list[tuple[str, str, str, int]]:
    return sorted((e.actor, e.target, e.reason, e.outcome) for e in get_history().actions(action=action).items)


def _options(body: str, action: str) -> list[str]:
    form = re.search(rf'<form class="action" data-action="{action}".*?</form>', body, re.S)
    assert form, f"no {action} form"
    return [unescape(v) for v in re.findall(r'<option value="([^"]*)"', form.group(0))]


def _post(run_id: str, action: str, fields: dict[str, str], **kwargs):
    return call("POST", ACTION, {"run_id": run_id, "action": action}, form=fields, **kwargs)


def _order(local) -> str:
    """order@1.0.0, 2.0.0 and 3.0.0 registered, and a run of 1.0.0 waiting on its approval."""
    for text in (V1, V2, V3):
        local.engine.register_workflow(compile_yaml(text))
    run_id = local.engine.start_run(local.engine.find_workflow("order@1.0.0"), {})
    assert local.run_until(lambda: local.engine.describe_run(run_id)["tasks"]["review"]["status"] == "WAITING",
                           timeout=15)
    return run_id


# ------------------------------------------------------------------ rewind

def test_a_failed_run_is_rewound_from_its_page(local):
    run_id = _failed(local)  # a COMPLETED, b FAILED, c never ran (CANCELLED)
    page = call("GET", RUN, {"run_id": run_id})
    assert _options(page.body, "rewind") == ["a", "b"]  # the checkpoints only
    assert 'data-action="migrate"' not in page.body  # an ended run is not migrated
    token = page.csrf("action", "rewind")
    answer = _post(run_id, "rewind", {"csrf": token, "to": "a", "reason": "a read <b>stale</b> data"})
    assert answer.status == 303, answer.body
    assert answer.headers["Location"].startswith(f"../../../console/runs/{run_id}?flash=Rewind+to+a")
    assert local.run_until(lambda: local.engine.describe_run(run_id)["redrives"] == 1
                           and local.engine.describe_run(run_id)["status"] == "FAILED", timeout=15)
    local.record_history()
    reopened = [e.reason for e in get_history().of_run(run_id).items
                if e.item == "" and e.previous == "FAILED" and e.status == "RUNNING"]
    assert reopened == ["rewind 1 to 'a' by ada (a read <b>stale</b> data): 0 tasks kept"]
    assert _audit(AuditAction.REWIND) == [("ada", run_id, "to a: a read <b>stale</b> data", 303)]
    flash = call("GET", RUN, {"run_id": run_id}, query={"flash": "Rewind to a: <b>"})
    assert "Rewind to a: &lt;b&gt;" in flash.body


def test_a_run_waiting_on_its_approval_is_rewound_from_its_page(local):
    run_id = _order(local)  # prepare COMPLETED, review WAITING: the run is RUNNING
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "rewind")
    answer = _post(run_id, "rewind", {"csrf": token, "to": "prepare", "reason": "draft 2"})
    assert answer.status == 303, answer.body
    assert local.run_until(lambda: (v := local.engine.describe_run(run_id))["redrives"] == 1
                           and v["status"] == "RUNNING" and v["tasks"]["review"]["status"] == "WAITING", timeout=15)
    # With its compensations first too, while it moves (prepare declares none: nothing to undo).
    again = _post(run_id, "rewind", {"csrf": token, "to": "prepare", "compensate": "true"})
    assert again.status == 303, again.body
    assert local.run_until(lambda: (v := local.engine.describe_run(run_id))["redrives"] == 2
                           and v["status"] == "RUNNING" and v["tasks"]["review"]["status"] == "WAITING", timeout=15)


def test_compensate_runs_the_discarded_tasks_compensations_first(local, clock):
    run_id = _start(local, SAGA.replace("raise RuntimeError('no cars left')", "result = 'CR-3'"))
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "rewind")
    answer = _post(run_id, "rewind", {"csrf": token, "to": "hotel", "compensate": "true", "reason": "wrong dates"})
    assert answer.status == 303 and "after+the+compensations+of+car%2C+hotel" in answer.headers["Location"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    local.record_history()
    assert ("COMPENSATING", "rewind 1 to 'hotel' by ada (wrong dates): compensating 2 tasks first") in [
        (e.status, e.reason) for e in get_history().of_run(run_id, limit=500).items if e.item == ""]
    assert _audit(AuditAction.REWIND) == [("ada", run_id, "to hotel: wrong dates", 303)]


def test_a_rewind_the_engine_refuses_is_its_error_page_and_audited(local, clock):
    failed, running = _failed(local), _waiting(local)
    saga = _start(local, SAGA)
    assert drive(local, saga, clock)["status"] == "FAILED"  # its compensations undid flight and hotel
    assert 'data-action="rewind"' not in call("GET", RUN, {"run_id": running}).body

    def rewind(run_id: str, to: str):
        return _post(run_id, "rewind", {"csrf": _token_for(run_id, "rewind"), "to": to})

    for run_id, to, status, why in [
        (failed, "c", 409, "'c' is CANCELLED: only a task that ran to its end"),
        (failed, "nope", 404, "its workflow has no task 'nope'"),
        (running, "ask", 409, "only a task that ran to its end (COMPLETED or FAILED) is a checkpoint"),
        (saga, "car", 409, "its compensation undid flight, hotel"),
        ("no-such-run", "a", 404, "there is no run with id 'no-such-run'"),
    ]:
        answer = rewind(run_id, to)
        assert answer.status == status and f'data-status-code="{status}"' in answer.body, (to, answer.body)
        assert why in unescape(answer.body), (to, answer.body)
    assert local.engine.describe_run(failed)["redrives"] == 0 and local.engine.describe_run(saga)["redrives"] == 0
    assert _audit(AuditAction.REWIND) == sorted([
        ("ada", failed, "to c", 409), ("ada", failed, "to nope", 404), ("ada", running, "to ask", 409),
        ("ada", saga, "to car", 409), ("ada", "no-such-run", "to a", 404)])


@pytest.mark.parametrize("fields, why", [
    ({}, "'to' must be the id of the task"),
    ({"to": "a", "compensate": "maybe"}, "'compensate' must be true or false"),
    ({"to": "a", "reason": "x" * 1001}, "a reason is at most 1000 characters"),
])
def test_a_rewind_form_that_cannot_be_taken_is_a_400(local, fields, why):
    run_id = _failed(local)
    answer = _post(run_id, "rewind", {"csrf": _token_for(run_id, "rewind"), **fields})
    assert answer.status == 400 and why in unescape(answer.body)
    assert local.engine.describe_run(run_id)["redrives"] == 0


# A for_each whose body is a chain of two, then a task, then a wait: once the loop has ended, the run waits.
LOOPED = """
workflow:
  metadata: {id: looped}
  tasks:
    - {id: after, type: python, depends_on: [each], config: {code: "result = len(tasks['each']['output'])"}}
    - {id: hold, type: wait, depends_on: [after], config: {duration: 1h}}
  control_flow:
    loops:
      - id: each
        items: [1, 2, 3]
        iterator: n
        tasks:
          - {id: square, type: python, config: {code: "result = n * n"}}
          - {id: add, type: python, depends_on: [square], config: {code: "result = tasks['square']['output'] + 1"}}
"""


def test_a_task_of_a_loops_body_is_rewound_from_the_page_in_the_iteration_asked(local, clock):
    run_id = _start(local, LOOPED)
    # The loop has ended, the run is RUNNING (waiting on hold): its body's tasks are offered.
    assert local.run_until(lambda: local.engine.describe_run(run_id)["tasks"]["hold"]["status"] == "WAITING",
                           timeout=15)
    page = call("GET", RUN, {"run_id": run_id})
    assert _options(page.body, "rewind") == ["each", "after", "square", "add"]
    assert "add (in the loop each)</option>" in page.body and 'name="iteration" type="number"' in page.body
    answer = _post(run_id, "rewind", {"csrf": page.csrf("action", "rewind"), "to": "add", "iteration": "1",
                                      "reason": "add was off"})
    assert answer.status == 303, answer.body
    assert "flash=Rewind+to+add+in+iteration+1%3A+queued" in answer.headers["Location"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert done["tasks"]["each"]["output"] == [2, 5, 10]
    assert _audit(AuditAction.REWIND) == [("ada", run_id, "to add in iteration 1: add was off", 303)]
    # Blank: the last iteration that ran (2); its answer says which.
    blank = _post(run_id, "rewind", {"csrf": _token_for(run_id, "rewind"), "to": "square", "iteration": " "})
    assert blank.status == 303 and "Rewind+to+square+in+iteration+2" in blank.headers["Location"]


def test_a_loop_task_mid_iteration_is_not_offered_and_a_bad_iteration_is_a_400(local, clock):
    plan = compile_yaml(LOOPED)

    def offered(run: str, each: str) -> list[str]:  # a view whose body tasks' last iteration ran them
        tasks = {"each": {"status": each}, "square": {"status": "COMPLETED"}, "add": {"status": "FAILED"}}
        return [task for task, _ in checkpoints({"status": run, "tasks": tasks}, plan)]

    assert offered("RUNNING", "WAITING") == []  # mid-iteration: the engine would refuse (409)
    assert offered("RUNNING", "COMPLETED") == ["each", "square", "add"]
    assert offered("FAILED", "WAITING") == ["square", "add"]  # the run ended mid-loop: its body is offered
    failed = _failed(local)
    for iteration in ("-1", "x", "1.5", "\u0661", "9" * 10):
        answer = _post(failed, "rewind", {"csrf": _token_for(failed, "rewind"), "to": "a", "iteration": iteration})
        assert answer.status == 400 and "'iteration' must be the number" in unescape(answer.body), iteration
    outside = _post(failed, "rewind", {"csrf": _token_for(failed, "rewind"), "to": "a", "iteration": "0"})
    assert outside.status == 400 and "'a' is not in a loop's body" in unescape(outside.body)
    assert local.engine.describe_run(failed)["redrives"] == 0


# ------------------------------------------------------------------ migrate

def test_a_waiting_run_is_migrated_dry_run_first(local, clock):
    run_id = _order(local)
    page = call("GET", RUN, {"run_id": run_id})
    assert _options(page.body, "migrate") == ["order@3.0.0", "order@2.0.0"]  # newest first, not its own
    assert _options(page.body, "rewind") == ["prepare"]  # a moving run is offered its checkpoints too
    token = page.csrf("action", "migrate")
    dry = _post(run_id, "migrate", {"csrf": token, "to": "order@2.0.0", "dry_run": "true", "reason": "notify"})
    assert dry.status == 200 and 'data-allowed="true"' in dry.body, dry.body
    assert "migrate order 1.0.0 -&gt; 2.0.0" in dry.body and "this was a dry run" in dry.body
    assert "&quot;keep_waiting&quot;" in dry.body  # the report as JSON
    assert f'href="../../../console/runs/{run_id}"' in dry.body
    assert local.engine.store.get_run(run_id).redrives == 0  # a dry run changes nothing
    done = _post(run_id, "migrate", {"csrf": token, "to": "order@2.0.0", "dry_run": "false", "reason": "notify"})
    assert done.status == 303 and "flash=Migrate+to+order%402.0.0%3A+queued" in done.headers["Location"]
    assert local.run_until(lambda: local.engine.find_workflow("order@2.0.0").hash
                           == local.engine.store.get_run(run_id).plan_hash, timeout=15)
    assert _audit(AuditAction.MIGRATE) == [("ada", run_id, "to order@2.0.0: dry run; notify", 200),
                                           ("ada", run_id, "to order@2.0.0: notify", 303)]


def test_a_refused_migration_is_a_409_page_with_the_planners_report(local, clock):
    run_id = _order(local)
    token = _token_for(run_id, "migrate")
    for dry_run in ("true", "false"):
        refused = _post(run_id, "migrate", {"csrf": token, "to": "order@3.0.0", "dry_run": dry_run})
        assert refused.status == 409 and 'data-status-code="409"' in refused.body
        assert 'data-allowed="false"' in refused.body and "cannot migrate order 1.0.0 -&gt; 3.0.0:" in refused.body
        assert "'review' (waiting): it is waiting, and version 3.0.0 renames it" in unescape(refused.body)
    ended = _failed(local)
    assert 'data-action="migrate"' not in call("GET", RUN, {"run_id": ended}).body
    over = _post(ended, "migrate", {"csrf": _token_for(ended, "migrate"), "to": "chain@latest"})
    assert over.status == 409 and "only a RUNNING or PAUSED run can be migrated" in over.body
    assert local.engine.store.get_run(run_id).redrives == 0
    assert _audit(AuditAction.MIGRATE) == sorted([
        ("ada", run_id, "to order@3.0.0: dry run", 409), ("ada", run_id, "to order@3.0.0", 409),
        ("ada", ended, "to chain@latest", 409)])


@pytest.mark.parametrize("fields, status, why", [
    ({"to": "order"}, 400, "'to' must name the version to move to"),
    ({"to": "order@2.0.0", "dry_run": "perhaps"}, 400, "'dry_run' must be true or false"),
    ({"to": "order@9.9.9"}, 404, "no workflow 'order@9.9.9'"),
    ({"to": "order@no such version"}, 404, "no workflow"),
    ({"to": "chain@latest"}, 404, "is not a version of the run's workflow 'order'"),
])
def test_a_migration_to_nothing_it_can_take_is_refused(local, fields, status, why):
    local.engine.register_workflow(compile_yaml(CHAIN))
    run_id = _order(local)
    answer = _post(run_id, "migrate", {"csrf": _token_for(run_id, "migrate"), **fields})
    assert answer.status == status and why in unescape(answer.body), answer.body
    assert local.engine.store.get_run(run_id).redrives == 0


# ------------------------------------------------------------------ deprecate

def test_a_version_is_deprecated_from_its_page(local):
    run_id = _order(local)
    page = call("GET", WORKFLOW, {"workflow_id": "order"}, query={"version": "1.0.0"})
    token = page.csrf("action", "deprecate")
    assert 'action="../../console/workflows/order/versions/1.0.0/deprecate"' in page.body
    answer = call("POST", DEPRECATE, {"workflow_id": "order", "version": "1.0.0"},
                  form={"csrf": token, "reason": "use 2.0.0: it <b>notifies</b>"})
    assert answer.status == 303, answer.body
    assert answer.headers["Location"].startswith("../../../../../console/workflows/order?version=1.0.0&flash=")
    [entry] = [e for e in local.engine.store.list_workflows() if e.version == "1.0.0"]
    assert entry.deprecated and entry.deprecation == "use 2.0.0: it <b>notifies</b>"
    after = call("GET", WORKFLOW, {"workflow_id": "order"}, query={"version": "1.0.0", "flash": "Deprecated"})
    assert 'data-action="deprecate"' not in after.body and 'class="deprecated"' in after.body
    assert "it &lt;b&gt;notifies&lt;/b&gt;" in after.body and '<p class="flash" role="status">Deprecated' in after.body
    assert local.engine.describe_run(run_id)["status"] == "RUNNING"  # a running run goes on
    assert "1.0.0 (deprecated)" in call("GET", RUN, {"run_id": _order_run(local)}).body
    again = call("POST", DEPRECATE, {"workflow_id": "order", "version": "1.0.0"}, form={"csrf": token, "reason": "x"})
    assert again.status == 303 and entry == [e for e in local.engine.store.list_workflows() if e.version == "1.0.0"][0]
    missing = call("POST", DEPRECATE, {"workflow_id": "order", "version": "9.9.9"},
                   form={"csrf": _token_for("order@9.9.9", "deprecate"), "reason": "gone"})
    assert missing.status == 404 and "no workflow &#x27;order@9.9.9&#x27;" in missing.body
    assert _audit(AuditAction.DEPRECATE) == sorted([
        ("ada", "order@1.0.0", "use 2.0.0: it <b>notifies</b>", 303), ("ada", "order@1.0.0", "x", 303),
        ("ada", "order@9.9.9", "gone", 404)])


def _order_run(local) -> str:
    """A run of order@2.0.0 (its migrate form lists 1.0.0, now deprecated)."""
    run_id = local.engine.start_run(local.engine.find_workflow("order@2.0.0"), {})
    assert local.run_until(lambda: local.engine.describe_run(run_id)["tasks"]["review"]["status"] == "WAITING",
                           timeout=15)
    return run_id


# ------------------------------------------------------------------ forged posts

@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_rewind_or_migration_is_refused_and_changes_nothing(local, kind):
    failed, waiting = _failed(local), _order(local)
    for run_id, action, fields in ((failed, "rewind", {"to": "a"}),
                                   (waiting, "migrate", {"to": "order@2.0.0", "dry_run": "false"})):
        others = {"other action": _token_for(run_id, "redrive" if action == "rewind" else "cancel"),
                  "other target": _token_for(waiting if run_id == failed else failed, action)}
        form, headers, user = forged(kind, _token_for(run_id, action), others)
        answer = _post(run_id, action, {**form, **fields}, headers=headers, user=user)
        assert answer.status == (415 if kind == "not a form" else 403), (action, answer.body)
    local.run_until(lambda: False, timeout=0.2)
    assert local.engine.store.get_run(failed).redrives == 0 and local.engine.store.get_run(waiting).redrives == 0
    assert get_history().actions().items == []  # refused before anything was asked of the engine


@pytest.mark.parametrize("kind", FORGERIES)
def test_a_forged_deprecation_is_refused_and_changes_nothing(local, kind):
    _order(local)
    others = {"other action": _token_for("order@1.0.0", "migrate"), "other target": _token_for("order@2.0.0",
                                                                                                "deprecate")}
    form, headers, user = forged(kind, _token_for("order@1.0.0", "deprecate"), others)
    answer = call("POST", DEPRECATE, {"workflow_id": "order", "version": "1.0.0"}, form={**form, "reason": "x"},
                  headers=headers, user=user)
    assert answer.status == (415 if kind == "not a form" else 403), answer.body
    assert not any(e.deprecated for e in local.engine.store.list_workflows())
    assert get_history().actions().items == []


def test_the_audit_log_and_the_history_name_the_signed_in_user(local):
    """On AWS the console's authorizer names the user; the request carries no IAM identity of its own."""
    run_id = _failed(local)
    token = call("GET", RUN, {"run_id": run_id}, principal="grace@example.com").csrf("action", "rewind")
    answer = _post(run_id, "rewind", {"csrf": token, "to": "b"}, user="", principal="grace@example.com")
    assert answer.status == 303
    assert _audit(AuditAction.REWIND) == [("grace@example.com", run_id, "to b", 303)]
    assert local.run_until(lambda: local.engine.describe_run(run_id)["redrives"] == 1
                           and local.engine.describe_run(run_id)["status"] == "FAILED", timeout=15)  # b fails again
    local.record_history()
    assert any("by grace@example.com" in e.reason for e in get_history().of_run(run_id).items)
    # The older actions are kept in her name too.
    redrive = call("GET", RUN, {"run_id": run_id}, principal="grace@example.com").csrf("action", "redrive")
    assert _post(run_id, "redrive", {"csrf": redrive}, user="", principal="grace@example.com").status == 303
    assert [e.actor for e in get_history().actions(action=AuditAction.REDRIVE).items] == ["grace@example.com"]


def test_on_the_embedded_stack_with_the_templates_permissions(runtime):
    """ConsoleFunction's IAM statements (template.yaml), which the embedded stack enforces, let it migrate a
    run, deprecate a version (an update of the registry) and rewind a run, on DynamoDB and SQS (moto)."""
    from infra.wiring import get_engine
    from tests.component.test_front_door import call as api

    def console(method: str, resource: str, params: dict[str, str], form: dict[str, str] | None = None):
        return call(method, resource, params, form=form, runtime=runtime)

    for text in (V1, V2):
        assert api(runtime, "POST", "/workflows", "/workflows", {"workflow": text})[0] == 201
    status, _, started = api(runtime, "POST", "/runs", "/runs", {"workflow": "order@1.0.0", "input": {}})
    run_id = started["run_id"]
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["approvals"], 30)
    token = console("GET", RUN, {"run_id": run_id}).csrf("action", "migrate")
    assert console("POST", ACTION, {"run_id": run_id, "action": "migrate"},
                   {"csrf": token, "to": "order@2.0.0", "dry_run": "true"}).status == 200
    assert console("POST", ACTION, {"run_id": run_id, "action": "migrate"},
                   {"csrf": token, "to": "order@2.0.0", "dry_run": "false"}).status == 303
    new_hash = get_engine().find_workflow("order@2.0.0").hash
    assert runtime.run_until(lambda: get_engine().store.get_run(run_id).plan_hash == new_hash, 30)

    version = console("GET", WORKFLOW, {"workflow_id": "order"}).csrf("action", "deprecate")  # the newest, 2.0.0
    deprecated = console("POST", DEPRECATE, {"workflow_id": "order", "version": "2.0.0"},
                         {"csrf": version, "reason": "3.0.0 is coming"})
    assert deprecated.status == 303, deprecated.body
    assert get_engine().plans.version_of("order@2.0.0").deprecation == "3.0.0 is coming"

    link = get_engine().describe_run(run_id)["approvals"][0]["url"].rsplit("/", 1)[1]
    assert api(runtime, "POST", f"/approvals/{link}", "/approvals/{token}", {"decision": "APPROVED"})[0] == 200
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["status"] == "COMPLETED", 60)
    rewind = console("GET", RUN, {"run_id": run_id}).csrf("action", "rewind")
    assert console("POST", ACTION, {"run_id": run_id, "action": "rewind"},
                   {"csrf": rewind, "to": "ship", "reason": "ship again"}).status == 303
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["redrives"] == 2
                             and get_engine().describe_run(run_id)["status"] == "COMPLETED", 60)
    ours = {AuditAction.DEPRECATE, AuditAction.MIGRATE, AuditAction.REWIND}
    assert sorted((e.action.value, e.outcome) for e in get_history().actions().items if e.action in ours) == [
        ("deprecate", 303), ("migrate", 200), ("migrate", 303), ("rewind", 303)]
