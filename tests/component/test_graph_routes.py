"""Seed 004's graph API through the api handler (functions/api/graph_routes.py): create a graph (checked:
an unknown function or a bad node is a 400 naming it at its line:col in the body), run it with an
initial context (merged over the graph's own), resume a run waiting at an approval node (an operator's
decision, as POST /runs/{id}/approvals/{task}), read its state. A fresh moto per test (`runtime`)."""

from __future__ import annotations

import json
import re

import pytest

from infra.wiring import get_engine
from tests.component.test_front_door import call, route_event, settle

CREATE, RUN, RESUME, STATE = "/graph/create", "/graph/run", "/graph/resume/{run_id}", "/graph/state/{run_id}"
REFUND = {
    "id": "refund",
    "context": {"limit": 100, "currency": "EUR"},
    "nodes": [
        {"id": "check", "type": "python",
         "config": {"code": "result = {'small': context['amount'] <= context['limit']}"}},
        {"id": "review", "type": "approval",
         "config": {"title": "Refund ${context.amount}?", "approvers": ["ann@example.com"], "timeout": "1d"}},
        {"id": "pay", "type": "python", "config": {"code": "result = {'paid': context['amount']}"}},
    ],
    "edges": [
        {"source": "check", "target": "pay", "condition": "${context.small}"},
        {"source": "check", "target": "review", "condition": "${not context.small}"},
        {"source": "review", "target": "pay", "condition": "${context.approved}"},
    ],
}
# A body as a client writes it, one field a line: a diagnostic's line:col is in this text.
UNKNOWN_FUNCTION = """{
  "nodes": [
    {"id": "plan", "function": "tests.component.test_graph_routes:plan"},
    {"id": "act", "function": "acme.tools:act"}
  ],
  "edges": [{"source": "plan", "target": "act"}]
}"""


def plan(context):
    return {"planned": context.get("goal", "?")}


def act(context):
    return {"acted": context["planned"] + "!"}


def create(runtime, graph=REFUND) -> str:
    status, _, body = call(runtime, "POST", CREATE, CREATE, graph)
    assert status == 201, body
    return body["graph_id"]


def run(runtime, graph_id: str, **fields) -> dict:
    status, _, body = call(runtime, "POST", RUN, RUN, {"graph_id": graph_id, **fields})
    assert status == 202, body
    return body


def state(runtime, run_id: str) -> tuple[int, dict]:
    status, _, body = call(runtime, "GET", f"/graph/state/{run_id}", STATE)
    return status, body


def until(runtime, run_id: str, status: str) -> dict:
    settle(runtime, run_id, lambda _: state(runtime, run_id)[1]["status"] == status)
    return state(runtime, run_id)[1]


def resume(runtime, run_id: str, body=None, content_type: str | None = "application/json"):
    return call(runtime, "POST", f"/graph/resume/{run_id}", RESUME, body, content_type=content_type)


def test_a_graph_is_created_once_under_its_content(runtime):
    status, _, body = call(runtime, "POST", CREATE, CREATE, REFUND)
    assert status == 201
    assert re.fullmatch(r"[0-9a-f]{64}", body["graph_id"])
    assert body == {"graph_id": body["graph_id"], "workflow_id": "refund", "nodes": ["check", "review", "pay"]}
    assert create(runtime) == body["graph_id"]  # the same body: the same graph, stored once
    assert create(runtime, {**REFUND, "context": {"limit": 5}}) != body["graph_id"]
    # Under "graph:", as a file may have it, too (its plan knows where each node was written: another id).
    assert create(runtime, {"graph": REFUND}) not in ("", body["graph_id"])


def test_an_unknown_function_is_a_400_naming_it_at_its_place_in_the_body(runtime, monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    runtime.restart_functions()
    status, _, body = call(runtime, "POST", CREATE, CREATE, UNKNOWN_FUNCTION)
    assert status == 400
    assert body["error"].startswith("invalid graph: graph.json:4:31: ") and "'acme.tools'" in body["error"]
    assert body["diagnostics"] == [body["error"][len("invalid graph: "):]]


NOT_CALLABLE = 0.8


def test_a_function_an_allowed_module_lacks_or_that_is_no_callable_is_a_400_naming_it(runtime, monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    runtime.restart_functions()
    graph = UNKNOWN_FUNCTION.replace("acme.tools:act", "tests.component.test_graph_routes:acts")
    status, _, body = call(runtime, "POST", CREATE, CREATE, graph)
    assert status == 400, body
    assert body["error"] == ("invalid graph: graph.json:4:31: node 'act': function 'tests.component.test_graph_routes"
                             ":acts' does not resolve to a callable: module 'tests.component.test_graph_routes' has "
                             "no 'acts'")
    graph = UNKNOWN_FUNCTION.replace("acme.tools:act", "tests.component.test_graph_routes:NOT_CALLABLE")
    status, _, body = call(runtime, "POST", CREATE, CREATE, graph)
    assert status == 400 and body["diagnostics"] == [
        "graph.json:4:31: node 'act': function 'tests.component.test_graph_routes:NOT_CALLABLE' does not resolve "
        "to a callable: 'tests.component.test_graph_routes:NOT_CALLABLE' is not callable"], body


def test_a_graph_sent_to_post_runs_or_workflows_is_resolved_too(runtime, monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    runtime.restart_functions()
    graph = UNKNOWN_FUNCTION.replace("acme.tools:act", "tests.component.test_graph_routes:acts")
    for path in ("/runs", "/workflows"):
        status, _, body = call(runtime, "POST", path, path, {"workflow": graph})
        assert status == 400 and body["diagnostics"] == [
            "workflow.yaml:4:31: node 'act': function 'tests.component.test_graph_routes:acts' does not resolve to "
            "a callable: module 'tests.component.test_graph_routes' has no 'acts'"], body


@pytest.mark.parametrize("graph, expected", [
    ({"nodes": [{"id": "a", "type": "python", "config": {"code": "x = 1"}}],
      "edges": [{"source": "a", "target": "nowhere"}]}, "edge 1: unknown target node 'nowhere'"),
    ({"nodes": [{"id": "a", "type": "warp", "config": {}}], "edges": []}, "unknown task type 'warp'"),
    ({"nodes": [{"id": "a"}], "edges": []}, "node 'a' needs exactly one of 'function'"),
    ({"nodes": [{"id": "a", "type": "python", "config": {"code": "x = 1"}}, {"id": "a", "type": "noop"}],
      "edges": []}, "duplicate node id 'a'"),
])
def test_a_bad_node_or_edge_is_a_400_naming_it(runtime, graph, expected):
    status, _, body = call(runtime, "POST", CREATE, CREATE, json.dumps(graph, indent=2))
    assert status == 400 and expected in body["error"], body
    assert re.match(r"invalid graph: graph\.json:\d+:\d+: ", body["error"]), body


@pytest.mark.parametrize("sent", [{"workflow": "workflow: {}"}, {"nodes": []}, [1], {"edges": []}])
def test_what_is_no_graph_document_is_a_400(runtime, sent):
    status, _, body = call(runtime, "POST", CREATE, CREATE, sent)
    assert status == 400 and "graph document" in body["error"] + body.get("diagnostics", [""])[0] \
        or status == 400 and "JSON object" in body["error"], body


def test_a_run_merges_its_context_over_the_graphs_and_completes(runtime):
    started = run(runtime, create(runtime), context={"amount": 40, "currency": "USD"})
    assert started["graph_id"] == create(runtime) and started["run_status"] == "RUNNING"
    assert started["state"]["amount"] == 40 and started["state"]["limit"] == 100
    assert started["status"] in ("running", "completed")
    done = until(runtime, started["run_id"], "completed")
    assert done == {**done, "current_node_id": None, "active_nodes": [], "run_status": "COMPLETED",
                    "state": {"limit": 100, "currency": "USD", "amount": 40, "small": True, "paid": 40}}
    assert done["outputs"] == {"context": done["state"]}


def test_a_run_waits_at_the_approval_node_and_a_bodiless_resume_approves(runtime):
    run_id = run(runtime, create(runtime), input={"amount": 250})["run_id"]  # 'input' is the same as 'context'
    waiting = until(runtime, run_id, "awaiting_approval")
    assert waiting["current_node_id"] == "review" and waiting["state"]["small"] is False
    status, _, body = resume(runtime, run_id, content_type=None)  # as the seed sends it: no body, no type
    assert status == 200, body
    assert (body["node"], body["decision"], body["outcome"]) == ("review", "APPROVED", "APPROVED")
    done = until(runtime, run_id, "completed")
    assert done["state"]["approved"] is True and done["state"]["paid"] == 250
    # Decided once: the approval machinery refuses a second decision.
    status, _, body = resume(runtime, run_id, {"decision": "REJECTED"})
    assert status == 409 and "not waiting at an approval node" in body["error"]


def test_a_rejection_takes_the_other_branch_and_is_audited(runtime):
    run_id = run(runtime, create(runtime), context={"amount": 250})["run_id"]
    until(runtime, run_id, "awaiting_approval")
    assert resume(runtime, run_id, {"decision": "MAYBE"})[0] == 400
    assert resume(runtime, run_id, {"decision": "REJECTED", "approver": "bob@example.com"})[0] == 404
    assert resume(runtime, run_id, {"node": "pay"})[0] == 409
    event = route_event("POST", f"/graph/resume/{run_id}", RESUME, {"decision": "REJECTED", "comments": "too much"})
    event["requestContext"]["requestId"] = "graph-resume-1"  # the audit log keeps one entry per request
    answer = runtime.invoke("ApiFunction", event)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["outcome"] == "REJECTED"
    done = until(runtime, run_id, "completed")
    assert done["state"]["approved"] is False and done["state"]["comments"] == "too much"
    assert "paid" not in done["state"]
    _, _, audit = call(runtime, "GET", "/audit", "/audit")
    [entry] = [e for e in audit["entries"] if e["request_id"] == "graph-resume-1"]
    assert (entry["action"], entry["target"], entry["outcome"]) == ("decide", run_id, 200)
    assert entry["reason"] == "REJECTED on review (graph resume)"


def test_a_registered_function_node_runs_over_http(runtime, monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    runtime.restart_functions()
    graph = json.loads(UNKNOWN_FUNCTION.replace("acme.tools:act", "tests.component.test_graph_routes:act"))
    run_id = run(runtime, create(runtime, graph), context={"goal": "ship"})["run_id"]
    assert until(runtime, run_id, "completed")["state"] == {"goal": "ship", "planned": "ship", "acted": "ship!"}


def test_unknown_ids_and_runs_of_workflow_files_are_404(runtime):
    graph_id = create(runtime)
    status, _, body = call(runtime, "POST", "/runs", "/runs", {"workflow": "workflow:\n  metadata: {id: w}\n  tasks:\n"
                                                              "    - {id: t, type: wait, config: {duration: 1h}}\n"})
    assert status == 201
    workflow_run = body["run_id"]
    workflow_plan = get_engine().store.get_run(workflow_run).plan_hash
    for graph in ("0" * 64, workflow_plan, "x" * 5000, "../etc"):
        status, _, answer = call(runtime, "POST", RUN, RUN, {"graph_id": graph})
        assert status == 404 and "no graph" in answer["error"], (graph, answer)
    for sent in ({}, {"graph_id": 7}, {"graph_id": graph_id, "context": [1]},
                 {"graph_id": graph_id, "context": {}, "input": {}}):
        assert call(runtime, "POST", RUN, RUN, sent)[0] == 400, sent
    for run_id in (workflow_run, "nope", "y" * 3000):
        assert state(runtime, run_id)[0] == 404
        assert resume(runtime, run_id)[0] == 404
