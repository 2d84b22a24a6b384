"""The api and worker Lambda handlers, called with events/*.json under a fresh moto per test."""

from __future__ import annotations

import json

import pytest

from infra.wiring import get_engine
from tests.conftest import api_event, compile_yaml, sqs_event

WORKFLOW = """
workflow:
  metadata: {id: handlers}
  tasks:
    - id: ask
      type: approval
      config: {title: "Approve <b>this</b>?", approvers: [a@example.com], timeout: 1h}
    - id: hook
      type: callback
      depends_on: [ask]
"""


def api(runtime, event):
    response = runtime.invoke("ApiFunction", event)
    body = response["body"]
    headers = {**{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
               **(response.get("headers") or {})}
    content_type = headers.get("Content-Type", "")
    return response["statusCode"], (json.loads(body) if "json" in content_type and body else body)


def start(runtime):
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": WORKFLOW, "input": {}}))
    assert status == 201, body
    return body["run_id"]


def settle(runtime, run_id, predicate):
    assert runtime.run_until(lambda: predicate(get_engine().describe_run(run_id)), 10)
    return get_engine().describe_run(run_id)


def token_of(url):
    return url.rsplit("/", 1)[1]


def test_post_runs_then_get_run(runtime):
    run_id = start(runtime)
    status, view = api(runtime, api_event("api_get_run.json", {"run_id": run_id}))
    assert status == 200
    assert view["run_id"] == run_id and view["status"] == "RUNNING"
    assert set(view) >= {"run_id", "status", "outputs", "error", "tasks", "approvals", "callbacks"}
    status, body = api(runtime, api_event("api_get_run.json", {"run_id": "nope"}))
    assert status == 404 and "nope" in body["error"]


def test_get_runs_lists_through_the_handler(runtime):
    run_id = start(runtime)
    status, body = api(runtime, api_event("api_list_runs.json"))  # ?status=RUNNING&limit=10
    assert status == 200 and [r["run_id"] for r in body["runs"]] == [run_id] and body["limit"] == 10
    event = api_event("api_list_runs.json")
    event["queryStringParameters"] = {"cursor": "bm90IGEgY3Vyc29y"}
    status, body = api(runtime, event)
    assert status == 400 and "'cursor'" in body["error"]


def test_approval_page_escapes_and_json_decision(runtime):
    run_id = start(runtime)
    view = settle(runtime, run_id, lambda v: v["approvals"])
    token = token_of(view["approvals"][0]["url"])
    status, page = api(runtime, api_event("api_get_approval_html.json", {"token": token}))
    assert status == 200
    assert "Approve &lt;b&gt;this&lt;/b&gt;?" in page and "<b>this</b>" not in page
    assert 'name="csrf"' in page
    status, body = api(runtime, api_event("api_post_approval.json", {"token": token}))
    assert status == 200 and body["decision"] == "APPROVED"
    status, body = api(runtime, api_event("api_post_approval.json", {"token": token}))
    assert status == 410
    view = settle(runtime, run_id, lambda v: v["tasks"]["ask"]["status"] == "COMPLETED")
    assert view["tasks"]["ask"]["output"]["comments"] == "Looks good"


def test_form_post_needs_the_page_csrf_value(runtime):
    run_id = start(runtime)
    token = token_of(settle(runtime, run_id, lambda v: v["approvals"])["approvals"][0]["url"])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = api(runtime, api_event("api_post_approval.json", {"token": token},
                                       body="decision=APPROVED&csrf=wrong", headers=form))
    assert status == 403
    csrf = get_engine().signer.csrf(token)
    response = runtime.invoke("ApiFunction", api_event("api_post_approval.json", {"token": token},
                                                       body=f"decision=REJECTED&comments=no&csrf={csrf}",
                                                       headers=form))
    headers = {**{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
               **(response.get("headers") or {})}
    assert response["statusCode"] == 303 and "done=1" in headers["Location"]


def test_forged_token_is_404_and_the_run_is_unchanged(runtime):
    run_id = start(runtime)
    before = settle(runtime, run_id, lambda v: v["approvals"])
    status, body = api(runtime, api_event("api_post_approval.json", {"token": "A" * 43}))
    assert status == 404 and body["error"] == "unknown link"
    assert get_engine().describe_run(run_id)["tasks"] == before["tasks"]


def test_callback_event_completes_the_task(runtime):
    run_id = start(runtime)
    token = token_of(settle(runtime, run_id, lambda v: v["approvals"])["approvals"][0]["url"])
    api(runtime, api_event("api_post_approval.json", {"token": token}))
    view = settle(runtime, run_id, lambda v: v["callbacks"])
    callback = token_of(view["callbacks"][0]["url"])
    status, body = api(runtime, api_event("api_post_callback.json", {"token": callback}))
    assert status == 200 and body["status"] == "accepted"
    view = settle(runtime, run_id, lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["hook"]["output"] == {"status": "shipped", "tracking": "1Z999"}


def test_a_named_callback_is_completed_through_the_api_by_run_and_name(runtime):
    workflow = WORKFLOW.replace("type: callback", "type: callback\n      config: {callback_id: \"${inputs.ref}\"}")
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": workflow, "input": {"ref": "po-9"}}))
    assert status == 201, body
    run_id = body["run_id"]
    token = token_of(settle(runtime, run_id, lambda v: v["approvals"])["approvals"][0]["url"])
    api(runtime, api_event("api_post_approval.json", {"token": token}))
    assert settle(runtime, run_id, lambda v: v["callbacks"])["callbacks"][0]["callback_id"] == "po-9"

    assert post_named(runtime, run_id, "callbacks", "po-8", {})[0] == 404
    status, body = post_named(runtime, run_id, "callbacks", "po-9", {"tracking": "1Z1"})
    assert status == 200 and body == {"status": "accepted", "run_id": run_id, "task_id": "hook"}
    view = settle(runtime, run_id, lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["status"] == "COMPLETED" and view["tasks"]["hook"]["output"] == {"tracking": "1Z1"}


def post_named(runtime, run_id, kind, name, body):
    """POST /runs/{run_id}/callbacks/{callback_id} or /runs/{run_id}/events/{name}."""
    event = api_event("api_post_callback.json", body=body)
    param = "callback_id" if kind == "callbacks" else "name"
    event["resource"] = event["requestContext"]["resourcePath"] = f"/runs/{{run_id}}/{kind}/{{{param}}}"
    event["path"] = f"/runs/{run_id}/{kind}/{name}"
    event["requestContext"]["path"] = "/Prod" + event["path"]
    event["pathParameters"] = {"run_id": run_id, param: name}
    return api(runtime, event)


def test_an_event_completes_the_waiting_task_through_the_api(runtime):
    workflow = WORKFLOW.replace("type: callback", "type: wait\n      config: {event: shipped, timeout: 1d}")
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": workflow, "input": {}}))
    assert status == 201, body
    run_id = body["run_id"]
    token = token_of(settle(runtime, run_id, lambda v: v["approvals"])["approvals"][0]["url"])
    assert post_named(runtime, run_id, "events", "shipped", {"n": 1})[0] == 404  # nothing waits for it yet
    api(runtime, api_event("api_post_approval.json", {"token": token}))
    assert settle(runtime, run_id, lambda v: v["callbacks"])["callbacks"][0]["event"] == "shipped"
    status, body = post_named(runtime, run_id, "events", "shipped", {"n": 2})
    assert status == 200 and body["task_ids"] == ["hook"]
    assert post_named(runtime, run_id, "events", "shipped", {"n": 3})[0] == 404  # a duplicate
    view = settle(runtime, run_id, lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["status"] == "COMPLETED" and view["tasks"]["hook"]["output"]["data"] == {"n": 2}


def test_worker_reports_a_busy_message_as_a_batch_item_failure(runtime, clock):
    from infra.ports import TaskChange

    engine = get_engine()
    plan = compile_yaml("""
        workflow:
          metadata: {id: busy}
          tasks:
            - {id: t, type: python, config: {code: "result = 1"}}
        """)
    run_id = engine.start_run(plan, {})
    lease = clock.now().replace(year=clock.now().year + 1).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    engine.store.change_task(run_id, "t", TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                                    set={"attempt": 1, "lease_until": lease}))
    exec_message = {"k": "exec", "run": run_id, "plan": plan.hash, "task": "t", "attempt": 1}
    stale = {"k": "exec", "run": run_id, "plan": plan.hash, "task": "t", "attempt": 7}
    response = runtime.invoke("WorkerFunction", sqs_event(exec_message, stale))
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}


def test_worker_fails_only_the_malformed_records(runtime):
    plan = compile_yaml("""
        workflow:
          metadata: {id: fine}
          tasks:
            - {id: t, type: python, config: {code: "result = 1"}}
        """)
    run_id = get_engine().start_run(plan, {})
    good = {"k": "exec", "run": run_id, "plan": plan.hash, "task": "t", "attempt": 1}
    event = sqs_event({"k": "start"}, {"k": "nonsense"}, good)
    event["Records"][0]["body"] = "{not json"
    response = runtime.invoke("WorkerFunction", event)
    # The bad ones return to the queue (and reach the DLQ after 5 receives); the good one is done:
    # its task went to the task runner, whose result completes it.
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["msg-0", "msg-1"]
    assert runtime.run_until(lambda: get_engine().describe_run(run_id)["tasks"]["t"]["status"] == "COMPLETED", 20)


@pytest.mark.parametrize("body, status", [("not json", 400), ("[1, 2]", 400), (json.dumps({"input": {}}), 400)])
def test_post_runs_rejects_bad_bodies_with_json(runtime, body, status):
    code, payload = api(runtime, api_event("api_post_runs.json", body=body))
    assert code == status and isinstance(payload, dict) and payload["error"]


def test_post_runs_accepts_a_workflow_object(runtime):
    workflow = {"workflow": {"metadata": {"id": "as_json"},
                             "tasks": [{"id": "t", "type": "python", "config": {"code": "result = 5"}}]}}
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": workflow}))
    assert status == 201, body
    view = settle(runtime, body["run_id"], lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["tasks"]["t"]["output"] == 5


def test_the_worker_does_not_start_a_task_it_has_no_time_for(runtime):
    """Issue #9 item 7: with 10 s left, the worker does not claim an email task (which may take 25 s): it puts
    the message back on the ready queue at once (no visibility wait) and counts its record done."""
    from functions.worker.app import lambda_handler
    from infra.tasks import outbox
    from loopline.embedded.runtime import LambdaContext

    outbox.clear()
    plan = compile_yaml("""
        workflow:
          metadata: {id: mail}
          tasks:
            - {id: m, type: email, config: {to: [a@example.com], from: b@example.com, subject: s, body: b}}
        """)
    run_id = get_engine().start_run(plan, {})
    message = {"k": "exec", "run": run_id, "plan": plan.hash, "task": "m", "attempt": 1}
    short = LambdaContext(function_name="WorkerFunction", timeout_ms=10_000)
    with runtime.lock:
        assert lambda_handler(sqs_event(message), short) == {"batchItemFailures": []}
        assert get_engine().describe_run(run_id)["tasks"]["m"]["status"] == "PENDING" and outbox.entries() == []
    sqs = runtime.aws.client("sqs")
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
        QueueUrl=runtime.stack.physical["ReadyQueue"], MaxNumberOfMessages=10)["Messages"]]
    assert {**message, "handed_back": 1} in bodies
