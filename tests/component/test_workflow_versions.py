"""Immutable workflow versions and their compatibility reports through the API (docs/versions.md), on
local mode's in-memory engine: the api handler called as API Gateway calls it."""

from __future__ import annotations

import json
import os
import threading
import uuid

from infra.wiring import get_engine, get_history
from loopline.embedded.runtime import LambdaContext
from statemachine.history import AuditAction
from statemachine.versions import VersionTaken
from tests.component.test_front_door import route_event
from tests.conftest import compile_yaml

for _name, _value in {"POWERTOOLS_METRICS_NAMESPACE": "Loopline", "POWERTOOLS_SERVICE_NAME": "loopline",
                      "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
    os.environ.setdefault(_name, _value)

ORDER = """
workflow:
  metadata: {id: order, version: "%(version)s", changelog: "%(changelog)s"}
  inputs:
    schema: {type: object, properties: {amount: {type: number}}}
  outputs:
    mappings: {charged: "${tasks.%(charge)s.output}"}
  tasks:
    - {id: check, type: python, config: {code: "result = 1"}}
    - {id: pause, type: wait, depends_on: [check], config: {duration: %(wait)s}}
    - {id: %(charge)s, type: python, depends_on: [pause], config: {code: "result = 2"}%(renamed)s}
%(extra)s"""


def order(version: str = "1.0.0", changelog: str = "first", wait: str = "1h", charge: str = "charge",
          renamed: str = "", extra: str = "") -> str:
    return ORDER % {"version": version, "changelog": changelog, "wait": wait, "charge": charge,
                    "renamed": f", renamed_from: {renamed}" if renamed else "", "extra": extra}


def api(method: str, path: str, resource: str, body=None, query: dict | None = None,
        content_type: str = "application/json") -> tuple[int, dict]:
    from functions.api.app import lambda_handler

    event = route_event(method, path, resource, body, content_type, query=query)
    event["requestContext"]["requestId"] = str(uuid.uuid4())  # the audit log keeps one entry per request
    response = lambda_handler(event, LambdaContext(function_name="ApiFunction"))
    return response["statusCode"], json.loads(response["body"])


def register(source: str, **extra) -> tuple[int, dict]:
    return api("POST", "/workflows", "/workflows", {"workflow": source, **extra})


def deprecate(ref: str, body=None) -> tuple[int, dict]:
    workflow_id, _, version = ref.partition("@")
    return api("POST", f"/workflows/{workflow_id}/versions/{version}/deprecate",
               "/workflows/{workflow_id}/versions/{version}/deprecate", body)


def shown(ref: str) -> tuple[int, dict]:
    return api("GET", f"/workflows/{ref}", "/workflows/{workflow_id}")


def test_a_version_is_immutable_and_registering_it_again_is_idempotent(local):
    status, body = register(order())
    assert status == 201, body
    assert body["created"] is True and body["report"] is None and body["changelog"] == "first"
    assert body["registered_at"] == "2026-01-01T00:00:00.000Z" or body["registered_at"]
    first_hash = body["hash"]
    status, again = register(order())
    assert status == 200 and again["created"] is False and again["hash"] == first_hash
    # Where the tasks are written is no part of the content: a comment above them changes nothing.
    status, moved = register("# the order workflow\n" + order())
    assert status == 200 and moved["hash"] == first_hash
    status, refused = register(order(wait="2h", changelog="other"))
    assert status == 409, refused
    assert refused["error"] == ("workflow 'order@1.0.0' is already registered with other content; "
                                "register it under a new version")
    assert refused["differences"] == ["compatible: task 'pause': wait changed (duration)", "its changelog differs"]
    assert shown("order@1.0.0")[1]["hash"] == first_hash  # the first registration stands


def test_the_report_against_the_previous_version_and_the_breaking_rule(local):
    assert register(order())[0] == 201
    status, body = register(order("1.1.0", "wait longer; pay renamed", wait="2h", charge="pay", renamed="charge"))
    assert status == 201, body
    assert body["compared_with"] == "1.0.0" and body["breaking_allowed"] == []
    assert body["report"]["breaking"] is False
    assert [c["kind"] for c in body["report"]["changes"]] == ["output_changed", "wait_changed", "task_renamed"]
    # A breaking change (a task removed) under a minor version: refused, with the report.
    removed = order("1.2.0", "no pause", charge="pay").replace(
        "    - {id: pause, type: wait, depends_on: [check], config: {duration: 1h}}\n", "").replace(
        "depends_on: [pause]", "depends_on: [check]")
    status, refused = register(removed)
    assert status == 409, refused
    assert refused["error"] == ("workflow 'order@1.2.0' makes breaking changes to 1.1.0: give it a higher major "
                                "version, or allow breaking changes")
    assert [(c["kind"], c["impact"]) for c in refused["report"]["changes"] if c["impact"] == "breaking"] == [
        ("task_removed", "breaking")]
    assert shown("order@1.2.0")[0] == 404
    # ... allowed when asked, and the override kept in the version's record and the audit log.
    status, allowed = register(removed, allow_breaking=True)
    assert status == 201, allowed
    assert allowed["breaking_allowed"] == ["task 'pause' removed"]
    listed = {w["version"]: w for w in api("GET", "/workflows", "/workflows")[1]["workflows"]}
    assert listed["1.2.0"]["breaking_allowed"] == ["task 'pause' removed"]
    entries = get_history().actions(action=AuditAction.REGISTER).items
    # (one clock time, so ordered by request id: compared as a set)
    assert sorted((e.target, e.outcome) for e in entries) == [
        ("order@1.0.0", 201), ("order@1.1.0", 201), ("order@1.2.0", 201), ("order@1.2.0", 409)]
    overridden = [e.reason for e in entries if e.target == "order@1.2.0" and e.outcome == 201]
    assert overridden[0].endswith("; breaking changes allowed: task 'pause' removed")
    assert all("allowed" not in e.reason for e in entries if e.outcome != 201 or e.target != "order@1.2.0")
    # A major version may break without asking.
    status, major = register(removed.replace('version: "1.2.0"', 'version: "2.0.0"').replace(
        '{id: check, type: python, config: {code: "result = 1"}}', '{id: check, type: shell, config: {command: ls}}'))
    assert status == 201, major
    assert major["report"]["from"] == "1.2.0" and major["report"]["breaking"] and major["breaking_allowed"] == []
    assert api("POST", "/workflows", "/workflows", {"workflow": order("3.0.0"), "allow_breaking": "yes"}) == (
        400, {"error": "'allow_breaking' must be true or false"})


def test_latest_deprecation_and_runs(local):
    for version in ("1.0.0", "1.1.0"):
        assert register(order(version))[0] == 201
    assert shown("order")[1]["version"] == "1.1.0" and shown("order@latest")[1]["version"] == "1.1.0"
    status, started = api("POST", "/runs", "/runs", {"workflow": "order@1.1.0", "input": {}})
    assert status == 201
    run_id = started["run_id"]
    assert local.run_until(lambda: get_engine().describe_run(run_id)["tasks"]["pause"]["status"] == "WAITING",
                           timeout=10)
    status, body = deprecate("order@1.1.0", {"reason": "charges twice"})
    assert status == 200, body
    assert body["deprecated"] is True and body["deprecation"] == "charges twice" and body["deprecated_at"]
    assert deprecate("order@1.1.0", {"reason": "again"})[1] == body  # the first deprecation stands
    # `order` and `order@latest` now mean 1.0.0; 1.1.0 is still shown, but no new run of it starts.
    assert shown("order")[1]["version"] == "1.0.0" and shown("order@latest")[1]["version"] == "1.0.0"
    assert shown("order@1.1.0")[0] == 200
    # Shown, it says it is deprecated (RFC 9745's header, the moment as epoch seconds); the body is
    # still the plan alone, and the version in use says nothing.
    from datetime import datetime

    from functions.api.app import lambda_handler
    answer = lambda_handler(route_event("GET", "/workflows/order@1.1.0", "/workflows/{workflow_id}", None,
                                        "application/json"), LambdaContext(function_name="ApiFunction"))
    since = datetime.fromisoformat(body["deprecated_at"].replace("Z", "+00:00")).timestamp()
    assert answer["multiValueHeaders"]["Deprecation"] == [f"@{int(since)}"]
    assert "registration" not in json.loads(answer["body"]) and json.loads(answer["body"])["version"] == "1.1.0"
    fresh = lambda_handler(route_event("GET", "/workflows/order", "/workflows/{workflow_id}", None,
                                       "application/json"), LambdaContext(function_name="ApiFunction"))
    assert "Deprecation" not in (fresh.get("multiValueHeaders") or {})
    # The console marks it, and shows why and each version's changelog.
    from functions.console.workflows_page import workflow_page, workflows_page
    assert "1.0.0, 1.1.0 (deprecated)" in workflows_page(get_engine(), root="/", actor="ada")
    one = workflow_page(get_engine(), "order", {"version": "1.1.0"}, root="/", actor="ada")
    assert "charges twice (new runs of it are refused)" in one and '<p class="changelog">first</p>' in one
    assert "deprecated" not in workflow_page(get_engine(), "order", {"version": "1.0.0"}, root="/", actor="ada")
    status, refused = api("POST", "/runs", "/runs", {"workflow": "order@1.1.0", "input": {}})
    assert (status, refused["deprecated"]) == (409, "order@1.1.0")
    assert refused["error"] == ("workflow 'order@1.1.0' is deprecated (charges twice): new runs of it are refused; "
                                "start 'order' for its newest version")
    status, other = api("POST", "/runs", "/runs", {"workflow": "order", "input": {}})
    assert status == 201
    assert get_engine().store.get_run(other["run_id"]).plan_hash == shown("order@1.0.0")[1]["hash"]
    # A new run whose sub-workflow pins the deprecated version is refused too.
    parent = "workflow:\n  metadata: {id: parent}\n  sub_workflows:\n    - {id: kid, workflow_ref: order@1.1.0}\n"
    status, refused = api("POST", "/runs", "/runs", {"workflow": parent, "input": {}})
    assert status == 409 and refused["error"].startswith("sub-workflow workflow 'order@1.1.0' is deprecated")
    # The run that was going goes on to its end on 1.1.0.
    local.clock.advance(3600)
    assert local.run_until(lambda: get_engine().describe_run(run_id)["status"] == "COMPLETED", timeout=10)
    # Every version deprecated: `order` is refused, not unknown.
    deprecate("order@1.0.0")
    status, refused = api("POST", "/runs", "/runs", {"workflow": "order", "input": {}})
    assert (status, refused["error"]) == (409, "every version of workflow 'order' is deprecated: register a new one")
    assert shown("order")[0] == 404
    actions = get_history().actions(action=AuditAction.DEPRECATE).items
    assert sorted((e.target, e.reason, e.outcome) for e in actions) == [
        ("order@1.0.0", "", 200), ("order@1.1.0", "again", 200), ("order@1.1.0", "charges twice", 200)]


def test_deprecate_refusals(local):
    assert deprecate("order@1.0.0") == (404, {"error": "no workflow 'order@1.0.0'"})
    register(order())
    assert deprecate("order@1.0.0", "[1]")[0] == 400
    assert deprecate("order@1.0.0", {"reason": 3}) == (400, {"error": "'reason' must be a string"})
    status, body = api("POST", "/workflows/order/versions/1.0.0/deprecate",
                       "/workflows/{workflow_id}/versions/{version}/deprecate", "{}", content_type="text/plain")
    assert status == 415
    assert shown("order")[1]["version"] == "1.0.0"  # nothing was deprecated
    # What cannot name a registered version is unknown, before any store is asked.
    assert deprecate("order@\u00b2") == (404, {"error": "no workflow 'order@\u00b2'"})
    assert deprecate("x" * 3000 + "@1.0.0")[0] == 404
    assert shown("order@\u00b2")[0] == 404 and shown("x" * 3000)[0] == 404
    assert api("GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff",
               query={"from": "1.0.0", "to": "x" * 500})[0] == 404


def test_the_diff_route(local):
    register(order())
    register(order("2.0.0", "pay", charge="pay", extra="    - {id: note, type: python, config: {code: 'x = 1'}}\n"))
    status, report = api("GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff", query={"from": "1.0.0"})
    assert status == 200, report
    assert (report["from"], report["to"], report["breaking"]) == ("1.0.0", "2.0.0", True)
    assert {(c["kind"], c["subject"]) for c in report["changes"]} == {
        ("output_changed", "charged"), ("task_removed", "charge"), ("task_added", "pay"), ("task_added", "note"),
        ("setting_changed", "nodes")} - {("setting_changed", "nodes")}
    same = api("GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff", query={"from": "2.0.0", "to": "latest"})
    assert same == (200, {"workflow_id": "order", "from": "2.0.0", "to": "2.0.0", "breaking": False, "changes": []})
    assert api("GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff")[0] == 400
    assert api("GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff",
               query={"from": "1.5.0"}) == (404, {"error": "no workflow 'order@1.5.0'"})
    assert api("GET", "/workflows/nope/diff", "/workflows/{workflow_id}/diff", query={"from": "1.0.0"})[0] == 404


def test_concurrent_registrations_of_one_version_with_other_content_have_one_winner(local):
    engine, outcomes, barrier = get_engine(), [], threading.Barrier(6)

    def attempt(n: int) -> None:
        plan = compile_yaml(order(changelog=f"try {n}"))
        barrier.wait()
        try:
            outcomes.append(engine.register_workflow(plan).created)
        except VersionTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes)) == ["True"] + ["taken"] * 5


def test_on_the_embedded_stack_with_the_templates_permissions(runtime):
    """DynamoDB's conditional writes, and the api function's IAM statements (template.yaml), which the
    embedded stack enforces: UpdateItem on the definitions table deprecates."""
    from tests.component.test_front_door import call

    def post(path, resource, body):
        return call(runtime, "POST", path, resource, body)[::2]

    assert post("/workflows", "/workflows", {"workflow": order()})[0] == 201
    assert post("/workflows", "/workflows", {"workflow": order()})[0] == 200
    status, body = post("/workflows", "/workflows", {"workflow": order(wait="2h")})
    assert (status, body["differences"]) == (409, ["compatible: task 'pause': wait changed (duration)"])
    assert post("/workflows", "/workflows", {"workflow": order("1.1.0", charge="pay", renamed="charge")})[0] == 201
    status, body = post("/workflows/order/versions/1.1.0/deprecate",
                        "/workflows/{workflow_id}/versions/{version}/deprecate", {"reason": "no"})
    assert (status, body["deprecated"]) == (200, True)
    assert post("/runs", "/runs", {"workflow": "order@1.1.0", "input": {}})[0] == 409
    status, _, report = call(runtime, "GET", "/workflows/order/diff", "/workflows/{workflow_id}/diff",
                             query={"from": "1.0.0", "to": "1.1.0"})
    assert status == 200 and [c["kind"] for c in report["changes"]] == ["output_changed", "task_renamed"]
    status, _, plan = call(runtime, "GET", "/workflows/order", "/workflows/{workflow_id}")
    assert (status, plan["version"]) == (200, "1.0.0")
