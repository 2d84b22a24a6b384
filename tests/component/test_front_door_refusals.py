"""The front door's refusal matrices (issue #9, items 1 and 11): every state-changing route takes
only JSON, and every route that reads a body answers 400 for what it cannot take. These requests
are refused before they reach the engine, so the module's tests share one embedded stack (a fresh
one per test cost about half a second each, for 100 cases); test_front_door.py has the rest."""

from __future__ import annotations

import json

import pytest

from tests.component.test_front_door import DEEP, WORKFLOW, call


@pytest.fixture(scope="module")
def runtime():
    from infra.clock import ManualClock
    from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

    aws = EmbeddedAws(redelivery_seconds=1)
    rt = LocalRuntime(aws, clock=ManualClock())
    yield rt
    rt.stop()
    aws.stop()


STATE_CHANGING = [
    ("POST", "/runs", "/runs"),
    ("POST", "/runs/r1/cancel", "/runs/{run_id}/cancel"),
    ("POST", "/runs/r1/pause", "/runs/{run_id}/pause"),
    ("POST", "/runs/r1/resume", "/runs/{run_id}/resume"),
    ("POST", "/runs/r1/redrive", "/runs/{run_id}/redrive"),
    ("POST", "/runs/r1/migrate", "/runs/{run_id}/migrate"),
    ("POST", "/workflows/w/versions/1.0.0/migrate", "/workflows/{workflow_id}/versions/{version}/migrate"),
    ("POST", "/runs/r1/rewind", "/runs/{run_id}/rewind"),
    ("POST", "/runs/r1/approvals/ask", "/runs/{run_id}/approvals/{task_id}"),
    ("POST", "/approvals/" + "A" * 43, "/approvals/{token}"),
    ("POST", "/callbacks/" + "A" * 43, "/callbacks/{token}"),
    ("POST", "/runs/r1/callbacks/order-1", "/runs/{run_id}/callbacks/{callback_id}"),
    ("POST", "/runs/r1/events/paid", "/runs/{run_id}/events/{name}"),
    ("POST", "/workflows", "/workflows"),
    ("POST", "/graph/create", "/graph/create"),
    ("POST", "/graph/run", "/graph/run"),
    ("POST", "/graph/resume/r1", "/graph/resume/{run_id}"),
]
# What a browser sends cross-site without asking first (no CORS preflight), and other non-JSON labels.
NOT_JSON = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; "
            "boundary=x", None, "application/jsonp", "text/json"]


@pytest.mark.parametrize("method, path, resource", STATE_CHANGING, ids=[r[1] for r in STATE_CHANGING])
@pytest.mark.parametrize("content_type", NOT_JSON)
def test_state_changing_routes_take_only_json(runtime, method, path, resource, content_type):
    if resource == "/approvals/{token}" and content_type == "application/x-www-form-urlencoded":
        pytest.skip("the approval page's own form post: CSRF-checked (test_handlers.py)")
    body = json.dumps({"workflow": WORKFLOW, "input": {}, "decision": "APPROVED"})
    status, headers, answer = call(runtime, method, path, resource, body, content_type=content_type)
    assert status == 415 and "application/json" in answer["error"], (status, answer)
    assert headers["x-content-type-options"] == "nosniff"



BODY_ROUTES = [
    ("/runs", "/runs"),
    ("/workflows", "/workflows"),
    ("/approvals/" + "A" * 43, "/approvals/{token}"),
    ("/callbacks/" + "A" * 43, "/callbacks/{token}"),
    ("/runs/r1/approvals/ask", "/runs/{run_id}/approvals/{task_id}"),
    ("/runs/r1/callbacks/order-1", "/runs/{run_id}/callbacks/{callback_id}"),
    ("/runs/r1/events/paid", "/runs/{run_id}/events/{name}"),
    ("/graph/create", "/graph/create"),
    ("/graph/run", "/graph/run"),
    ("/graph/resume/r1", "/graph/resume/{run_id}"),
]


@pytest.mark.parametrize("path, resource", BODY_ROUTES, ids=[r[0] for r in BODY_ROUTES])
@pytest.mark.parametrize("body, why", [
    (DEEP, "deep"),
    ('{"workflow": "x", "input": ' + "[" * 101 + "]" * 101 + "}", "deep"),
    ('{"input": {"n": NaN}}', "NaN"),
    ('{"input": {"n": Infinity}}', "Infinity"),
    ('{"input": {"n": -Infinity}}', "Infinity"),
    ('{"input": {"n": 1e999}}', "too large"),
    ('{"input": {"s": "\\ud800"}}', "surrogate"),
    ('{"input": ', "not valid JSON"),
], ids=["deep-100000", "deep-101", "nan", "infinity", "minus-infinity", "1e999", "lone-surrogate", "truncated"])
def test_bodies_that_cannot_be_taken_are_400_with_a_message(runtime, path, resource, body, why):
    status, headers, answer = call(runtime, "POST", path, resource, body)
    assert status == 400 and why in answer["error"], (status, answer)
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path, resource", [
    ("/runs/r1/redrive", "/runs/{run_id}/redrive"), ("/runs/r1/cancel", "/runs/{run_id}/cancel"),
    ("/workflows/w/versions/1.0.0/deprecate", "/workflows/{workflow_id}/versions/{version}/deprecate"),
    ("/workflow/start/w", "/workflow/start/{name}"), ("/graph/resume/r1", "/graph/resume/{run_id}")])
def test_a_body_of_blanks_is_no_json_and_no_empty_body(runtime, path, resource):
    # schemathesis sent "\r\n" to a redrive, which took it for no body and redrove the run.
    status, _, answer = call(runtime, "POST", path, resource, "\r\n")
    assert status == 400 and "JSON" in answer["error"], (status, answer)


@pytest.mark.parametrize("action", ["cancel", "pause", "resume", "redrive"])
@pytest.mark.parametrize("body", ["null", "[]", '"why"', "3"])
def test_an_operator_actions_body_is_none_or_an_object(runtime, action, body):
    # JSON null is a body, and not an object: refused like any other (schemathesis found null taken).
    status, _, answer = call(runtime, "POST", f"/runs/r1/{action}", "/runs/{run_id}/" + action, body)
    assert status == 400 and "JSON object" in answer["error"], (status, answer)
