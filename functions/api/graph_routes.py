"""Seed 004's graph API (docs/graph-form.md, "Over HTTP"): create a graph, run it with an initial
context, resume a run suspended at an approval node, read its state. A router the api handler
includes (app.py).

Nothing here runs or decides anything of its own. A graph is compiled by the same compiler as any
workflow and stored as its plan, content-addressed: the graph's id is the plan's hash (the same
document gives the same id, and creating it again writes nothing new). A run is POST /runs's
(`start_plan`), a resume is an operator's decision in an approver's name (`engine.decide_for`, as
POST /runs/{id}/approvals/{task}), and the state is read from the run as GET /runs/{id} reads it.

The seed's words are kept here and nowhere else: its lowercase statuses (``awaiting_approval`` is a
RUNNING run whose node waits for a decision), its ``current_node_id`` and its ``state`` (the shared
context as it stands).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from functions.api import schemas as doc
from functions.api.history import audited
from functions.api.request_body import json_object, optional_json_object
from infra.json_http import dumps
from infra.sandbox.settings import SandboxSettings
from infra.service import MAX_SOURCE, ApiError, check_functions, start_plan
from infra.wiring import get_engine
from statemachine.compiler import compile_workflow
from statemachine.diagnostics import WorkflowError
from statemachine.graph_form import LOOP_ID, ROUTER_ID, is_graph
from statemachine.history import AuditAction
from statemachine.plan import Plan
from statemachine.status import RUN_ENDED, RunStatus, TaskStatus
from statemachine.yaml_source import load_yaml

router = Router()
RESUME = "/graph/resume/{run_id}"
FILENAME = "graph.json"  # what a diagnostic's position is in: the request's body, line:col
_HASH = re.compile(r"^[0-9a-f]{64}$")  # a plan's hash: anything else names no graph (before the store)
_OUTCOMES = ("APPROVED", "REJECTED", "PENDING")
_ACTIVE = (TaskStatus.RUNNING, TaskStatus.WAITING, TaskStatus.RETRYING, TaskStatus.READY)
# The seed's statuses (running, completed, failed, awaiting_approval) and loopline's others, lowercase.
SEED_STATUS = {RunStatus.RUNNING: "running", RunStatus.COMPENSATING: "running", RunStatus.PAUSED: "paused",
               RunStatus.COMPLETED: "completed", RunStatus.FAILED: "failed", RunStatus.CANCELLED: "cancelled"}


# ------------------------------------------------------------------ the shapes (GET /openapi.json)


class GraphDocument(doc._Open):
    """The graph document (docs/graph-form.md, "The document"), as the body itself."""

    nodes: list[dict[str, Any]] = Field(description="each {id, function} or {id, type, config, ...}")
    edges: list[dict[str, Any]] = Field(description="each {source, target, condition}")
    context: dict[str, Any] | None = Field(None, description="the context's defaults")


class GraphCreated(doc._Open):
    graph_id: str = Field(description="the graph's id: its compiled plan's hash")
    workflow_id: str = Field(description="the graph's 'id' (default 'graph')")
    nodes: list[str]


class GraphRunRequest(doc.BaseModel):
    graph_id: str
    context: dict[str, Any] | None = Field(None, description="the initial context: merged over the graph's own "
                                                             "(its keys win); 'input' is taken as the same")


class GraphResumeRequest(doc.BaseModel):
    decision: Literal["APPROVED", "REJECTED"] = Field("APPROVED", description="APPROVED when left out (the seed's "
                                                                              "resume advances past the node)")
    comments: str | None = None
    approver: str | None = Field(None, description="in whose name; required when several are asked")
    node: str | None = Field(None, description="the approval node; required when several wait")


class GraphState(doc._Open):
    run_id: str
    graph_id: str
    status: Literal["running", "awaiting_approval", "paused", "completed", "failed", "cancelled"]
    current_node_id: str | None = Field(description="the node running or waiting (the first, when parallel "
                                                    "branches run several); null once the run has ended")
    state: dict[str, Any] | None = Field(description="the shared context as it stands")
    run_status: RunStatus = Field(description="the run's status in loopline's words (GET /runs/{id})")
    active_nodes: list[str]
    outputs: Any = None
    error: dict[str, Any] | None = None


class GraphResumed(GraphState):
    node: str = Field(description="the approval node decided")
    decision: Literal["APPROVED", "REJECTED"]
    outcome: str = Field(description="APPROVED, REJECTED, or PENDING while more decisions are needed")


# ------------------------------------------------------------------ helpers


def _json(status: int, body) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(body))


def bodiless_resume(event, content_type: str) -> bool:
    """A resume sent as the seed sends it (a POST with no body and no type) is taken, as seed 000's start is
    (front_door_routes.bodiless_start): the route is IAM-signed on AWS, and locally the dev server
    refuses another origin's request before any handler runs (docs/security.md)."""
    return event.get("resource") == RESUME and not content_type and not event.body


def compile_graph(body: dict, raw: str, limits, sandbox: SandboxSettings) -> Plan:
    """The request's graph, compiled. Its positions are the body's own lines and columns when the body,
    read as YAML (of which JSON is nearly a subset), is the same document; else its indented rendering's."""
    if not is_graph(body):
        raise ApiError(400, "the body must be a graph document: an object with 'nodes' and 'edges'")
    if len(raw) > MAX_SOURCE:
        raise ApiError(413, f"the graph is larger than {MAX_SOURCE} characters")
    text = raw if load_yaml(raw, FILENAME)[0] == body else json.dumps(body, indent=2)
    try:
        plan = compile_workflow(text, FILENAME, limits)
        # Each function node must name a callable: resolved now, by the task runner's rules, in a child process
        # (a 503 when the check cannot be made: never stored unchecked).
        check_functions(text, FILENAME, limits, sandbox)
        return plan
    except WorkflowError as error:
        found = [str(d) for d in error.diagnostics]
        raise ApiError(400, f"invalid graph: {found[0]}", diagnostics=found) from error


def _graph(engine, graph_id: Any) -> Plan:
    if not isinstance(graph_id, str) or not _HASH.match(graph_id):
        raise ApiError(404 if isinstance(graph_id, str) else 400,
                       f"no graph '{str(graph_id)[:100]}'" if isinstance(graph_id, str) else "'graph_id' must be "
                       "the id POST /graph/create answered")
    try:
        plan = engine.plan(graph_id)
    except LookupError:
        plan = None
    if plan is None or plan.input_into is None:  # a workflow's plan is no graph
        raise ApiError(404, f"no graph '{graph_id}'")
    return plan


def graph_state(engine, run_id: str) -> dict[str, Any]:
    """A graph run in the seed's shape (GraphState). 404 for no run, or a run of a workflow file."""
    run = engine.store.get_run(run_id) if len(run_id) <= 200 else None
    plan = engine.plan(run.plan_hash) if run is not None else None
    if run is None or plan is None or plan.input_into is None:
        raise ApiError(404, f"no graph run with id '{run_id[:200]}'")
    view = engine.describe_run(run_id)
    cyclic = LOOP_ID in plan.nodes and plan.nodes[LOOP_ID].kind == "loop"
    nodes = [n for n in plan.nodes if n not in ((ROUTER_ID, LOOP_ID) if cyclic else ())]
    active = [n for n in nodes if view["tasks"][n]["status"] in _ACTIVE] if run.status not in RUN_ENDED else []
    if not active and cyclic and run.status not in RUN_ENDED and run.variables.get("current") in nodes:
        active = [run.variables["current"]]  # between two steps: the node the routing chose
    status = SEED_STATUS.get(RunStatus(run.status), str(run.status).lower())
    if status == "running" and view["approvals"]:
        status = "awaiting_approval"
    return {"run_id": run_id, "graph_id": run.plan_hash, "status": status,
            "current_node_id": active[0] if active else None, "state": run.variables.get(plan.input_into),
            "run_status": run.status, "active_nodes": active, "outputs": view["outputs"], "error": view["error"]}


# ------------------------------------------------------------------ routes


@router.post("/graph/create", **doc.route(
    "Create a graph (seed 004): checked, compiled and stored; answers its id", (201, GraphCreated),
    errors=(400, 413, 503), tags=("graph",), request=doc.body(GraphDocument)))
def create_graph():
    body = json_object(router.current_event.body)
    engine = get_engine()
    made: list[Plan] = []

    def create():
        plan = compile_graph(body, router.current_event.body or "", engine.settings.limits, engine.settings.sandbox)
        engine.plans.save(plan)  # content-addressed and conditional: creating it again writes nothing
        made.append(plan)
        return _json(201, {"graph_id": plan.hash, "workflow_id": plan.workflow_id,
                           "nodes": [n["id"] for n in (body.get("graph") or body)["nodes"]]})  # compiled: well-formed
    return audited(router.current_event, AuditAction.REGISTER,
                   lambda: f"graph {made[0].hash} ({made[0].workflow_id})" if made else "a graph", "", create)


@router.post("/graph/run", **doc.route(
    "Run a created graph with an initial context (seed 004)", (202, GraphState), errors=(400, 404, 409),
    tags=("graph",), request=doc.body(GraphRunRequest)))
def run_graph():
    body = json_object(router.current_event.body)
    engine = get_engine()
    started: dict = {}

    def start():
        if "context" in body and "input" in body:
            raise ApiError(400, "give the initial context once: 'context' (or 'input')")
        context = body.get("context", body.get("input"))
        if context is not None and not isinstance(context, dict):
            raise ApiError(400, "'context' must be a JSON object")
        started.update(start_plan(engine, _graph(engine, body.get("graph_id")), context))
        return _json(202, graph_state(engine, started["run_id"]))
    return audited(router.current_event, AuditAction.START,
                   lambda: f"{started['run_id']} (graph {body.get('graph_id')})" if started
                   else f"graph {str(body.get('graph_id'))[:100]}", "", start)


@router.post("/graph/resume/<run_id>", **doc.route(
    "Resume a graph run waiting at an approval node: decide it (seed 004)", (200, GraphResumed),
    errors=(400, 403, 404, 409, 410), tags=("graph",), request=doc.body(GraphResumeRequest, required=False)))
def resume_graph(run_id: str):
    body = optional_json_object(router.current_event.body) or {}
    engine = get_engine()
    decision, node = body.get("decision", "APPROVED"), body.get("node")
    decided: list[str] = []

    def resume():
        graph_state(engine, run_id)  # 404 unless a graph run
        pending = [a for a in engine.pending_approvals(run_id) if node in (None, a["task_id"])]
        waiting = sorted({a["task_id"] for a in pending})
        if not waiting:
            raise ApiError(409, f"run '{run_id}' is not waiting at an approval node"
                           + (f" '{str(node)[:200]}'" if node is not None else ""))
        if len(waiting) > 1:
            raise ApiError(409, f"several nodes wait for a decision ({', '.join(waiting)}): say which ('node')",
                           waiting=waiting)
        decided.append(waiting[0])
        accepted = engine.decide_for(run_id, waiting[0], decision, body.get("comments"), body.get("approver"))
        after = graph_state(engine, run_id)
        outcome = accepted["outcome"]
        if outcome not in _OUTCOMES:  # the node's output is the context, so the engine names its status:
            outcome = (after["state"] or {}).get("decision", outcome)  # the decision is in the context
        return _json(200, {**after, "node": waiting[0], "decision": decision, "outcome": outcome})
    return audited(router.current_event, AuditAction.DECIDE, run_id[:200],
                   lambda: f"{decision!s:.20} on {(decided or [node or '?'])[0]!s:.200} (graph resume)", resume)


@router.get("/graph/state/<run_id>", **doc.route(
    "A graph run's status, current node and context (seed 004)", (200, GraphState), errors=(404,),
    tags=("graph",)))
def graph_run_state(run_id: str):
    return _json(200, graph_state(get_engine(), run_id))
