"""Migration through the API (docs/versions.md): POST /runs/{id}/migrate and a version's bulk route, on local
mode's engine (the api handler called as API Gateway calls it), and on the embedded stack (DynamoDB, SQS and
the template's IAM statements on moto)."""

from __future__ import annotations

import pytest

from infra.wiring import get_engine, get_history
from statemachine.history import AuditAction
from tests.component.test_front_door import call
from tests.component.test_workflow_versions import api, register
from tests.unit.test_engine_migration import V1, V2
from tests.unit.test_engine_semantics import drive, settle

RUN = "/runs/{run_id}/migrate"
BULK = "/workflows/{workflow_id}/versions/{version}/migrate"


def migrate(run_id: str, body) -> tuple[int, dict]:
    return api("POST", f"/runs/{run_id}/migrate", RUN, body)


def waiting(local) -> tuple[str, str]:
    status, body = api("POST", "/runs", "/runs", {"workflow": "order@1.0.0", "input": {}})
    assert status == 201, body
    view = settle(local, body["run_id"])
    assert view["tasks"]["review"]["status"] == "WAITING"
    return body["run_id"], view["approvals"][0]["url"].rsplit("/", 1)[1]


@pytest.fixture
def versions(local):
    assert register(V1)[0] == 201 and register(V2)[0] == 201


def test_a_dry_run_then_the_migration_then_the_run_finishes_on_the_new_version(local, clock, versions):
    run_id, token = waiting(local)
    status, dry = migrate(run_id, {"to": "order@2.0.0", "dry_run": True})
    assert status == 200 and dry["dry_run"] and not dry["changed"], dry
    assert [(t["task"], t["action"]) for t in dry["report"]["tasks"]] == [
        ("draft", "keep"), ("review", "keep_waiting"), ("notify", "add"), ("ship", "re_evaluate")]
    status, accepted = migrate(run_id, {"to": "order@2.0.0", "reason": "notify before shipping"})
    assert status == 202 and accepted["changed"] and accepted["epoch"] == 1, accepted
    settle(local, run_id)
    local.engine.decide(token, "APPROVED")
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["outputs"]["told"] == "told draft 1"
    audit = [(e.action, e.target, e.reason, e.outcome) for e in get_history().actions(action=AuditAction.MIGRATE).items]
    assert sorted(audit) == sorted([
        (AuditAction.MIGRATE, run_id, "to order@2.0.0: dry run", 200),
        (AuditAction.MIGRATE, run_id, "to order@2.0.0: notify before shipping", 202)])


def test_a_refusal_is_a_409_with_the_report(local, versions):
    renames_the_wait = V2.replace("    - id: review\n", "    - id: check\n      renamed_from: review\n").replace(
        "depends_on: [review]", "depends_on: [check]").replace('"2.0.0"', '"3.0.0"')
    assert register(renames_the_wait)[0] == 201
    run_id, _ = waiting(local)
    for dry_run in (True, False):
        status, refused = migrate(run_id, {"to": "order@3.0.0", "dry_run": dry_run})
        assert status == 409, refused
        assert refused["error"] == f"run '{run_id}' cannot be migrated to order@3.0.0"
        assert refused["report"]["blockers"] == [{"task": "review", "status": "WAITING", "reason": (
            "it is waiting, and version 3.0.0 renames it to 'check': its links and timers name it")}]
        assert refused["lines"][1].startswith("  'review' (waiting): ")
    assert get_engine().store.get_run(run_id).redrives == 0


@pytest.mark.parametrize("body, status, why", [
    ({}, 400, "'to' must name the version"),
    ({"to": "order"}, 400, "'to' must name the version"),
    ({"to": 3}, 400, "'to' must name the version"),
    ({"to": "order@2.0.0", "dry_run": "yes"}, 400, "'dry_run' must be true or false"),
    ({"to": "order@2.0.0", "reason": 1}, 400, "'reason' must be a string"),
    ([], 400, "JSON object"),
    ({"to": "order@9.9.9"}, 404, "no workflow 'order@9.9.9'"),
    ({"to": "order@no such version"}, 404, "no workflow"),
])
def test_bad_requests(local, versions, body, status, why):
    run_id, _ = waiting(local)
    answered, answer = migrate(run_id, body)
    assert answered == status and why in answer["error"], answer


def test_an_unknown_run_is_a_404(local, versions):
    assert migrate("nope", {"to": "order@2.0.0"}) == (404, {"error": "no run with id 'nope'"})


def test_every_run_of_a_version_not_ended(local, clock, versions):
    runs = [waiting(local) for _ in range(3)]
    local.engine.decide(runs[2][1], "APPROVED")
    assert drive(local, runs[2][0], clock)["status"] == "COMPLETED"
    path = "/workflows/order/versions/1.0.0/migrate"
    status, dry = api("POST", path, BULK, {"to": "order@2.0.0", "dry_run": True})
    assert status == 200 and sorted(r["run_id"] for r in dry["runs"]) == sorted(r for r, _ in runs[:2])
    assert all(r["allowed"] and not r["changed"] for r in dry["runs"])
    status, done = api("POST", path, BULK, {"to": "order@2.0.0"})
    assert status == 202 and all(r["changed"] for r in done["runs"]), done
    for run_id, token in runs[:2]:
        settle(local, run_id)
        local.engine.decide(token, "APPROVED")
        assert drive(local, run_id, clock)["outputs"]["told"] == "told draft 1"
    assert api("POST", path, BULK, {"to": "other@2.0.0"})[0] == 400
    assert api("POST", "/workflows/order/versions/7.0.0/migrate", BULK, {"to": "order@2.0.0"})[0] == 404


def test_on_the_embedded_stack_with_the_templates_permissions(runtime):
    """DynamoDB's conditional writes and transactions, SQS, and the IAM statements of the api and worker
    functions (template.yaml), which the embedded stack enforces."""
    def post(path, resource, body):
        return call(runtime, "POST", path, resource, body)[::2]

    assert post("/workflows", "/workflows", {"workflow": V1})[0] == 201
    assert post("/workflows", "/workflows", {"workflow": V2})[0] == 201
    status, started = post("/runs", "/runs", {"workflow": "order@1.0.0", "input": {}})
    run_id = started["run_id"]
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["approvals"], 30)
    token = get_engine().describe_run(run_id)["approvals"][0]["url"].rsplit("/", 1)[1]
    status, dry = post(f"/runs/{run_id}/migrate", RUN, {"to": "order@2.0.0", "dry_run": True})
    assert status == 200 and dry["allowed"], dry
    status, accepted = post(f"/runs/{run_id}/migrate", RUN, {"to": "order@2.0.0"})
    assert status == 202, accepted
    new_hash = get_engine().find_workflow("order@2.0.0").hash
    assert runtime.run_until(lambda: get_engine().store.get_run(run_id).plan_hash == new_hash, 30)
    status, decided = post(f"/approvals/{token}", "/approvals/{token}", {"decision": "APPROVED"})
    assert status == 200, decided
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["status"] == "COMPLETED", 60)
    assert get_engine().describe_run(run_id)["outputs"] == {"shipped": "shipped", "told": "told draft 1"}
