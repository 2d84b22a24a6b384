"""Seed 000's front door through the api handler (functions/api/front_door_routes.py): start a
registered workflow by name, read it in the seed's status shape, decide its approval by
/workflow/resume?token=&decision= (a GET shows, a POST decides). A fresh moto per test (`runtime`).
"""

from __future__ import annotations

import json
import re

from infra.wiring import get_engine
from tests.component.test_front_door import call, headers_of, route_event, settle

WORKFLOW = """
workflow:
  metadata: {id: seed_door, version: "1.0.0"}
  inputs:
    schema: {type: object, properties: {amount: {type: number}}}
    defaults: {amount: 1}
  tasks:
    - id: ask
      type: approval
      config: {title: "Pay ${inputs.amount}?", approvers: [boss@example.com], timeout: 1h}
    - id: after
      type: wait
      depends_on: [ask]
      config: {duration: 0s}
"""
START = "/workflow/start/{name}"
RESUME = "/workflow/resume"
STATUS = "/workflow/status/{run_id}"
FORM = "application/x-www-form-urlencoded"


def register(runtime) -> None:
    status, _, body = call(runtime, "POST", "/workflows", "/workflows", {"workflow": WORKFLOW})
    assert status == 201, body


def start(runtime, **kwargs) -> tuple[int, object]:
    status, _, body = call(runtime, "POST", "/workflow/start/seed_door", START, **kwargs)
    return status, body


def waiting(runtime) -> tuple[str, str]:
    """A started run of seed_door waiting for its approval: (run id, the link's token)."""
    register(runtime)
    status, body = start(runtime, body={"input": {"amount": 12}})
    assert status == 202, body
    run_id = body["workflow_id"]
    view = settle(runtime, run_id, lambda v: v["approvals"])
    return run_id, view["approvals"][0]["url"].rsplit("/", 1)[1]


def resume(runtime, method: str, query: dict, **kwargs):
    return call(runtime, method, RESUME, RESUME, query=query, **kwargs)


def test_a_registered_workflow_starts_by_name_in_the_seeds_shape(runtime):
    register(runtime)
    status, body = start(runtime, body={"input": {"amount": 12}})
    assert status == 202
    assert body == {"message": "Durable workflow created", "workflow_id": body["run_id"], "status": "RUNNING",
                    "run_id": body["run_id"], "workflow_name": "seed_door"}
    assert get_engine().describe_run(body["run_id"])["workflow_id"] == "seed_door"
    # ID@VERSION names one version; the run's input is checked as POST /runs checks it.
    status, _, body = call(runtime, "POST", "/workflow/start/seed_door@1.0.0", START)
    assert status == 202 and body["workflow_name"] == "seed_door"
    status, body = start(runtime, body={"input": {"amount": "twelve"}})
    assert status == 400 and body["error"].startswith("invalid input")


def test_a_start_sent_as_the_seed_sends_it_without_body_or_type_is_taken(runtime):
    register(runtime)
    status, body = start(runtime, content_type=None)
    assert status == 202, body
    assert settle(runtime, body["workflow_id"], lambda v: v["approvals"])["status"] == "RUNNING"


def test_a_start_with_a_body_a_browser_can_forge_starts_nothing(runtime):
    register(runtime)
    for content_type, body in (("text/plain", '{"input": {}}'), (FORM, "input=1"), (None, '{"input": {}}')):
        status, answer = start(runtime, body=body, content_type=content_type)
        assert status == 415, (content_type, answer)
    runtime.run_until(lambda: False, 0.5)
    assert not get_engine().pending_approvals()


def test_an_unknown_or_malformed_name_is_404_and_a_bad_body_400(runtime):
    register(runtime)
    for path in ("/workflow/start/nobody", "/workflow/start/" + "x" * 3000, "/workflow/start/a:b",
                 "/workflow/start/seed_door@9.9.9"):
        status, _, body = call(runtime, "POST", path, START)
        assert status == 404 and "no registered workflow" in body["error"], (path, body)
    for sent in ("[1]", "{bad"):
        assert start(runtime, body=sent)[0] == 400


def test_the_status_is_the_seeds_shape(runtime):
    run_id, _ = waiting(runtime)
    status, _, body = call(runtime, "GET", f"/workflow/status/{run_id}", STATUS)
    assert status == 200
    assert body == {"workflow_id": run_id, "workflow_name": "seed_door", "workflow_status": "RUNNING",
                    "tasks": [{"task_id": "ask", "status": "WAITING", "error": None},
                              {"task_id": "after", "status": "PENDING", "error": None}]}
    status, _, body = call(runtime, "GET", "/workflow/status/nope", STATUS)
    assert (status, body) == (404, {"error": "Workflow not found"})


def test_a_failed_tasks_error_is_one_line(runtime):
    failing = ("workflow:\n  metadata: {id: seed_fail}\n  tasks:\n"
               "    - {id: boom, type: python, config: {code: \"raise ValueError('no')\"}}\n")
    assert call(runtime, "POST", "/workflows", "/workflows", {"workflow": failing})[0] == 201
    status, _, body = call(runtime, "POST", "/workflow/start/seed_fail", START)
    assert status == 202, body
    run_id = body["workflow_id"]
    settle(runtime, run_id, lambda v: v["status"] == "FAILED")
    _, _, status_body = call(runtime, "GET", f"/workflow/status/{run_id}", STATUS)
    assert status_body["workflow_status"] == "FAILED"
    assert status_body["tasks"][0]["status"] == "FAILED" and "ValueError: no" in status_body["tasks"][0]["error"]


def test_a_get_of_the_resume_link_never_decides(runtime):
    run_id, token = waiting(runtime)
    for accept in ("application/json", "text/html", "*/*"):
        status, headers, body = resume(runtime, "GET", {"token": token, "decision": "APPROVED"}, accept=accept)
        assert status == 200, body
    status, headers, page = resume(runtime, "GET", {"token": token, "decision": "DENIED"}, accept="text/html")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-store" and "form-action 'self'" in headers["content-security-policy"]
    # One button, the link's decision, posting to the same URL with the page's anti-forgery value.
    assert re.findall(r'<button[^>]*value="(\w+)"', page) == ["DENIED"]
    assert f'value="{get_engine().signer.csrf(token)}"' in page and "Pay 12?" in page
    status, _, info = resume(runtime, "GET", {"token": token, "decision": "DENIED"})
    assert status == 200 and info["decision"] == "DENIED" and info["run_id"] == run_id
    assert info["status"] == "PENDING" and info["task_id"] == "ask"
    runtime.run_until(lambda: False, 0.5)
    view = get_engine().describe_run(run_id)
    assert view["tasks"]["ask"]["status"] == "WAITING" and not get_engine().link_was_used(token)


def test_a_post_decides_denied_as_rejected_in_the_seeds_shape(runtime):
    run_id, token = waiting(runtime)
    status, _, body = resume(runtime, "POST", {"token": token, "decision": "DENIED"}, body={"comments": "too much"})
    assert status == 200, body
    assert body == {"message": "Workflow task resumed", "workflow_id": run_id, "task_id": "ask",
                    "status": "COMPLETED", "decision": "DENIED", "outcome": "REJECTED"}
    view = settle(runtime, run_id, lambda v: v["status"] == "COMPLETED")
    assert view["tasks"]["ask"]["output"]["decision"] == "REJECTED"
    assert view["tasks"]["ask"]["output"]["comments"] == "too much"
    # The link is used: a second decision, either way, is refused and changes nothing.
    status, _, body = resume(runtime, "POST", {"token": token, "decision": "APPROVED"})
    assert status == 410 and "already" in body["error"]
    assert get_engine().describe_run(run_id)["tasks"]["ask"]["output"]["decision"] == "REJECTED"


def test_an_empty_json_post_approves(runtime):
    run_id, token = waiting(runtime)
    status, _, body = resume(runtime, "POST", {"token": token, "decision": "APPROVED"})  # JSON type, no body
    assert status == 200 and body["outcome"] == "APPROVED" and body["status"] == "COMPLETED"
    assert settle(runtime, run_id, lambda v: v["status"] == "COMPLETED")["outputs"] is None


def test_bad_resume_requests_are_4xx_and_decide_nothing(runtime):
    run_id, token = waiting(runtime)
    cases = [({"token": token}, 400), ({"decision": "APPROVED"}, 400), (None, 400),
             ({"token": token, "decision": "MAYBE"}, 400), ({"token": token, "decision": "approved"}, 400),
             ({"token": "A" * 43, "decision": "APPROVED"}, 404)]
    for method in ("GET", "POST"):
        for query, expected in cases:
            status, _, body = resume(runtime, method, query)
            assert status == expected and body["error"], (method, query, body)
    status, _, body = resume(runtime, "POST", {"token": token, "decision": "APPROVED"}, body="[1]")
    assert status == 400
    assert get_engine().describe_run(run_id)["tasks"]["ask"]["status"] == "WAITING"


def test_a_post_a_browser_can_forge_is_refused(runtime):
    """As /approvals/{token}: a cross-site form or text/plain post, or a bodiless one, decides nothing."""
    run_id, token = waiting(runtime)
    query = {"token": token, "decision": "APPROVED"}
    assert resume(runtime, "POST", query, body="decision=APPROVED", content_type="text/plain")[0] == 415
    assert resume(runtime, "POST", query, content_type=None)[0] == 415  # the seed's GET, sent as a bodiless POST
    status, _, body = resume(runtime, "POST", query, body="decision=APPROVED&csrf=forged", content_type=FORM)
    assert status == 403 and "approval page" in body["error"]
    status, _, body = resume(runtime, "POST", query, body="decision=APPROVED", content_type=FORM)
    assert status == 403
    # Another link's anti-forgery value is no good for this one.
    other = get_engine().signer.csrf("B" * 43)
    assert resume(runtime, "POST", query, body=f"decision=APPROVED&csrf={other}", content_type=FORM)[0] == 403
    runtime.run_until(lambda: False, 0.5)
    assert get_engine().describe_run(run_id)["tasks"]["ask"]["status"] == "WAITING"


def test_the_confirmation_pages_own_form_decides_and_shows_thanks(runtime):
    run_id, token = waiting(runtime)
    csrf = get_engine().signer.csrf(token)
    event = route_event("POST", RESUME, RESUME, f"decision=DENIED&comments=no%0D%0Athanks&csrf={csrf}", FORM,
                        "text/html", {"token": token, "decision": "DENIED"})
    response = runtime.invoke("ApiFunction", event)
    headers = headers_of(response)
    assert response["statusCode"] == 303 and headers["location"] == f"../approvals/{token}?done=1"
    view = settle(runtime, run_id, lambda v: v["status"] == "COMPLETED")
    assert view["tasks"]["ask"]["output"]["decision"] == "REJECTED"
    assert view["tasks"]["ask"]["output"]["comments"] == "no\nthanks"
    status, _, page = call(runtime, "GET", f"/approvals/{token}", "/approvals/{token}", accept="text/html",
                           query={"done": "1"})
    assert status == 200 and "Your decision has been recorded." in page
    # Asked again, the used link says so, as a page to a browser.
    status, _, page = resume(runtime, "GET", {"token": token, "decision": "DENIED"}, accept="text/html")
    assert status == 410 and "<h1>" in page


def test_the_routes_are_in_the_openapi_document(runtime):
    status, _, document = call(runtime, "GET", "/openapi.json", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert {"/workflow/start/{name}", "/workflow/status/{run_id}", "/workflow/resume"} <= set(paths)
    assert paths["/workflow/resume"]["post"].get("security") in (None, [])
    assert paths["/workflow/start/{name}"]["post"]["security"] == [{"sigv4": []}]
    names = {p["name"] for p in paths["/workflow/resume"]["get"]["parameters"]}
    assert names == {"token", "decision"} and json.dumps(paths["/workflow/resume"]).count("DENIED") >= 2


def test_a_decision_short_of_the_quorum_leaves_the_task_waiting(runtime):
    from tests.component.test_front_door import WORKFLOW as TWO_APPROVERS
    from tests.component.test_front_door import links

    assert call(runtime, "POST", "/workflows", "/workflows", {"workflow": TWO_APPROVERS})[0] == 201
    status, _, body = call(runtime, "POST", "/workflow/start/front_door", START)
    assert status == 202, body
    token = links(runtime, body["workflow_id"])["ann@example.com"]
    status, _, body = resume(runtime, "POST", {"token": token, "decision": "APPROVED"})
    assert status == 200 and (body["status"], body["outcome"]) == ("WAITING", "PENDING"), body
