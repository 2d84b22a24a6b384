"""The graph form (docs/graph-form.md): a document of nodes, edges and a shared context, translated into
the workflow language and run by the same engine.

The registered callables of the graphs below are this module's functions (``tests.unit.test_graph_form:plan``
and friends), allowed the way a deployment allows them: LOOPLINE_CUSTOM_MODULES and the compiler's limits.
"""

from __future__ import annotations

import textwrap

import pytest

from statemachine.compiler import compile_workflow, validate_workflow
from statemachine.diagnostics import WorkflowError
from statemachine.graph_form import is_graph, translate
from statemachine.limits import DeploymentLimits
from statemachine.yaml_source import load_yaml
from tests.unit.test_engine_semantics import drive, settle, statuses

HERE = __name__
ALLOWED = DeploymentLimits((HERE,))


def plan(context):
    return {"plan": f"step {context.get('steps', 0) + 1}"}


def act(context):
    return {"steps": context.get("steps", 0) + 1}


def check(context, target=3):
    return {"done": context["steps"] >= target}


def score(context):
    return {"score": context["base"] * 2}


@pytest.fixture(autouse=True)
def allow_this_module(monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HERE)


def graph(text: str):
    return compile_workflow(textwrap.dedent(text), "graph.yaml", ALLOWED)


def run(local, clock, text: str, inputs=None):
    run_id = local.engine.start_run(graph(text), inputs or {})
    return drive(local, run_id, clock)


def problems(text: str, limits: DeploymentLimits = ALLOWED) -> list[str]:
    return [str(d) for d in validate_workflow(textwrap.dedent(text), "graph.yaml", limits)]


def translated(text: str) -> dict:
    data, smap, diags = load_yaml(textwrap.dedent(text), "graph.yaml")
    assert not diags and is_graph(data)
    workflow, _, found = translate(data, smap, "graph.yaml")
    assert not found and workflow is not None
    return workflow["workflow"]


BRANCHING = f"""
    id: scoring
    context: {{base: 0.3}}
    nodes:
      - {{id: measure, function: "{HERE}:score"}}
      - {{id: accept, type: python, config: {{code: "result = {{'verdict': 'accepted'}}"}}}}
      - {{id: reject, type: python, config: {{code: "result = {{'verdict': 'rejected'}}"}}}}
      - {{id: report, type: python, config: {{code: "result = {{'reported': context['verdict']}}"}}}}
    edges:
      - {{source: measure, target: accept, condition: "${{context.score > 0.5}}"}}
      - {{source: measure, target: reject, condition: "context.score <= 0.5"}}
      - {{source: accept, target: report}}
      - {{source: reject, target: report}}
"""

LOOPING = f"""
    graph:
      id: agent
      entry: plan
      recursion_limit: %(limit)s
      context: {{target: %(target)s}}
      nodes:
        - {{id: plan, function: "{HERE}:plan"}}
        - {{id: act, function: "{HERE}:act"}}
        - {{id: check, function: "{HERE}:check", parameters: {{target: %(target)s}}}}
      edges:
        - {{source: plan, target: act}}
        - {{source: act, target: check}}
        - {{source: check, target: plan, condition: "${{not context.done}}"}}
"""


def test_a_graph_document_is_told_from_a_workflow():
    assert is_graph({"nodes": [], "edges": []}) and is_graph({"graph": {}})
    assert not is_graph({"workflow": {}, "nodes": [], "edges": []}) and not is_graph({"nodes": []})
    assert not is_graph([1])


def test_an_acyclic_graph_becomes_tasks_with_dependencies_and_whens():
    wf = translated(BRANCHING)
    assert wf["metadata"] == {"id": "scoring"}
    assert wf["variables"] == [{"name": "context", "type": "object", "default": {"base": 0.3}}]
    tasks = {t["id"]: t for t in wf["tasks"]}
    assert tasks["measure"]["type"] == "custom" and "depends_on" not in tasks["measure"]
    assert tasks["measure"]["config"] == {"handler": f"{HERE}:score",
                                          "parameters": {"context": "${variables.context}"}}
    assert tasks["accept"]["when"] == "${context.score > 0.5}"  # ${...} or a bare expression: the same
    assert tasks["reject"]["when"] == "${context.score <= 0.5}"
    assert tasks["report"]["depends_on"] == ["accept", "reject"] and "when" not in tasks["report"]
    assert tasks["accept"]["outputs"] == [
        {"name": "context", "value": "${merge(variables.context, response)}", "export": True}]
    assert "control_flow" not in wf


def test_several_conditional_edges_into_a_node_run_it_when_any_is_taken():
    wf = translated("""
        nodes:
          - {id: a, type: python, config: {code: "result = {}"}}
          - {id: b, type: python, config: {code: "result = {}"}}
          - {id: c, type: python, config: {code: "result = {}"}}
        edges:
          - {source: a, target: c, condition: "${context.x == 1}"}
          - {source: b, target: c}
    """)
    c = wf["tasks"][2]
    assert c["depends_on"] == ["a", "b"]
    assert c["when"] == "${(tasks.a.status == 'COMPLETED' && (context.x == 1)) || (tasks.b.status == 'COMPLETED')}"


def test_a_cyclic_graph_becomes_one_loop_running_a_node_per_step():
    wf = translated(LOOPING % {"limit": 7, "target": 3})
    (loop,) = wf["control_flow"]["loops"]
    assert loop["type"] == "do_while" and loop["max_iterations"] == 7 and loop["id"] == "recursion_limit"
    assert [t["id"] for t in loop["tasks"]] == ["graph_route", "plan", "act", "check"]
    router, _, acting, _ = loop["tasks"]
    assert router["type"] == "wait" and router["outputs"][0]["name"] == "current"
    assert router["outputs"][0]["value"] == "${" + loop["condition"][3:-len(") != '__end__'}")] + "}"
    assert acting["when"] == "${variables.current == 'act'}" and acting["depends_on"] == ["graph_route"]
    assert {"name": "last", "value": "act", "export": True} in acting["outputs"]
    assert loop["condition"].startswith("${(variables.last == null ? 'plan' : variables.last == 'plan' ? 'act'")
    assert "tasks" not in wf


def test_an_edge_or_entry_naming_no_string_is_an_error_not_a_crash():
    # Found by tests/e2e/test_openapi_fuzz.py: a mapping as an edge's source was looked up among the
    # nodes, and a mapping is not hashable (POST /graph/create answered 502).
    assert problems("""
        nodes:
          - {id: a, type: wait, config: {duration: 0s}}
        edges:
          - {source: {x: 1}, target: a}
          - {source: a, target: [a]}
        entry: {a: 1}
    """) == [
        "graph.yaml:5:14: edge 1: 'source' must be a node's id, a string",
        "graph.yaml:6:25: edge 2: 'target' must be a node's id, a string",
        "graph.yaml:7:8: 'entry' must be a node's id, a string",
    ]


def test_graph_errors_name_their_line_and_column():
    assert problems("""
        nodes:
          - {id: a, type: python, config: {code: "x = 1"}}
          - {id: a, type: python, config: {code: "x = 2"}}
          - {id: c}
          - {id: d, function: "no_colon"}
          - {id: f, function: "m:f", config: {x: 1}}
          - {id: e, type: python, config: {code: "x = 1"}, when: "${true}"}
        edges:
          - {source: a, target: zz}
          - {source: c, weight: 2}
        colour: blue
    """) == [
        "graph.yaml:4:10: duplicate node id 'a' (first at node 1)",
        "graph.yaml:5:5: node 'c' needs exactly one of 'function' (a registered callable, 'module:function') "
        "and 'type' (a task type)",
        "graph.yaml:6:23: node 'd': 'function' must be 'module:function'",
        "graph.yaml:7:30: node 'f': a function node takes 'parameters', not 'config'",
        "graph.yaml:8:52: node 'e': 'when' is set by the graph's edges and context, not on a node",
        "graph.yaml:10:25: edge 1: unknown target node 'zz'",
        "graph.yaml:11:5: edge 2 needs a 'target'",
        "graph.yaml:11:17: unknown field 'weight' in edge 2",
        "graph.yaml:12:1: unknown field 'colour' in the graph",
    ]


def test_a_cycle_without_an_entry_node_is_an_error():
    assert problems(LOOPING.replace("entry: plan", "") % {"limit": 5, "target": 1}) == [
        "graph.yaml:7:3: no entry node: every node is an edge's target; name the first with 'entry'"]
    assert problems("graph: {nodes: [], edges: []}") == [
        "graph.yaml:1:9: a graph needs 'nodes': a non-empty list"]


def test_what_the_compiler_finds_in_the_translation_points_into_the_graph_document():
    text = """
        context: {x: 1}
        nodes:
          - {id: a, function: "os:getcwd"}
          - {id: b, type: pythn, config: {code: "x = 1"}}
        edges:
          - {source: a, target: b, condition: "${context.x >>}"}
    """
    found = problems(text)
    assert found[0].startswith("graph.yaml:4:23: task 'a': custom handler module 'os' is not allowed")
    assert found[1].startswith("graph.yaml:5:19: unknown task type 'pythn' (did you mean 'python'?")
    assert found[2] == "graph.yaml:7:53: expression error: unexpected '>'"
    # Deny by default: without the deployment's word, no function is allowed, ours neither.
    assert problems(BRANCHING, DeploymentLimits())[0].startswith(
        f"graph.yaml:5:29: task 'measure': custom handler module '{HERE}' is not allowed")


def test_an_acyclic_graph_runs_its_conditional_edges_and_merges_the_context(local, clock):
    view = run(local, clock, BRANCHING)
    assert view["status"] == "COMPLETED"
    assert statuses(view) == {"measure": "COMPLETED", "accept": "COMPLETED", "reject": "SKIPPED",
                              "report": "COMPLETED"}
    assert view["outputs"] == {"context": {"base": 0.3, "score": 0.6, "verdict": "accepted", "reported": "accepted"}}
    low = run(local, clock, BRANCHING.replace("base: 0.3", "base: 0.1"))
    assert statuses(low)["accept"] == "SKIPPED" and low["outputs"]["context"]["reported"] == "rejected"


def test_a_plan_act_check_cycle_ends_when_the_context_says_so(local, clock):
    view = run(local, clock, LOOPING % {"limit": 25, "target": 3})
    assert view["status"] == "COMPLETED"
    assert view["outputs"] == {"context": {"target": 3, "plan": "step 3", "steps": 3, "done": True}}
    assert view["tasks"]["recursion_limit"]["status"] == "COMPLETED"


def test_a_cycle_that_runs_over_its_recursion_limit_fails_the_run_naming_the_bound(local, clock):
    view = run(local, clock, LOOPING % {"limit": 7, "target": 5})  # 5 rounds of 3 nodes need 15 steps
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "MaxIterationsExceeded"
    assert "'recursion_limit'" in view["error"]["message"] and "(7)" in view["error"]["message"]
    exact = run(local, clock, LOOPING % {"limit": 9, "target": 3})  # exactly 9 steps: within the bound
    assert exact["status"] == "COMPLETED"


APPROVING = """
    context: {amount: 120}
    nodes:
      - {id: draft, type: python, config: {code: "result = {'text': 'pay ' + str(context['amount'])}"}}
      - id: review
        type: approval
        config: {title: "Pay ${context.amount}?", approvers: [ann@example.com], timeout: 1d}
      - {id: pay, type: python, config: {code: "result = {'paid': context['amount']}"}}
      - {id: drop, type: python, config: {code: "result = {'paid': 0}"}}
    edges:
      - {source: draft, target: review}
      - {source: review, target: pay, condition: "${context.approved}"}
      - {source: review, target: drop, condition: "${not context.approved}"}
"""


@pytest.mark.parametrize("decision, paid", [("APPROVED", 120), ("REJECTED", 0)])
def test_an_approval_node_suspends_the_run_until_decided(local, clock, decision, paid):
    run_id = local.engine.start_run(graph(APPROVING), {})
    waiting = settle(local, run_id)
    assert waiting["status"] == "RUNNING" and waiting["tasks"]["review"]["status"] == "WAITING"
    (request,) = waiting["approvals"]
    assert request["approver"] == "ann@example.com" and request["title"] == "Pay 120?"
    assert settle(local, run_id)["tasks"]["review"]["status"] == "WAITING"  # nothing moves it on
    local.engine.decide(request["url"].rsplit("/", 1)[1], decision, "ok")
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    context = view["outputs"]["context"]
    assert context["paid"] == paid and context["decision"] == decision and context["text"] == "pay 120"


def test_the_translated_plan_is_a_plan_like_any_other():
    plan = graph(BRANCHING)
    assert plan.workflow_id == "scoring" and set(plan.nodes) == {"measure", "accept", "reject", "report"}
    with pytest.raises(WorkflowError):
        compile_workflow("nodes: [{id: a}]\nedges: []\n", "graph.yaml", ALLOWED)


def test_a_node_whose_output_is_not_an_object_fails_naming_why(local, clock):
    view = run(local, clock, """
        context: {kept: true}
        nodes:
          - {id: listing, type: python, config: {code: "result = [1, 2]"}}
          - {id: after, type: python, config: {code: "result = {'ran': True}"}}
        edges:
          - {source: listing, target: after}
    """)
    assert view["status"] == "FAILED" and statuses(view) == {"listing": "FAILED", "after": "CANCELLED"}
    assert "merge() takes two objects" in view["error"]["message"]


def test_a_json_graph_document_compiles_too():
    text = ('{"id": "j", "context": {"x": 2},\n "nodes": [{"id": "a", "type": "python", "config": {"code": "x = 1"}},\n'
            '  {"id": "b", "type": "python", "config": {"code": "x = 2"}}],\n'
            ' "edges": [{"source": "a", "target": "b", "condition": "${context.x in [1, 2]}"}]}\n')
    plan = compile_workflow(text, "graph.json")
    assert plan.nodes["b"].deps == ("a",) and plan.nodes["b"].when == "${context.x in [1, 2]}"
    broken = text.replace('"target": "b"', '"target": "c"')
    assert [str(d) for d in validate_workflow(broken, "graph.json")] == [
        "graph.json:4:38: edge 1: unknown target node 'c'"]


def test_the_cli_validates_and_compiles_a_graph_document(tmp_path, capsys):
    from loopline.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(textwrap.dedent(BRANCHING).replace(f"function: \"{HERE}:score\"", "type: wait, "
                                                       "config: {duration: 1s}"), encoding="utf-8")
    bad.write_text("nodes: [{id: a, type: python, config: {code: 'x = 1'}}]\nedges: [{source: a, target: b}]\n",
                   encoding="utf-8")
    assert main(["validate", str(good)]) == 0 and capsys.readouterr().out == "ok\n"
    assert main(["compile", str(good)]) == 0
    assert '"report"' in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 2
    assert capsys.readouterr().out.strip() == f"{bad}:2:29: edge 1: unknown target node 'b'"


REVISING = """
    entry: draft
    context: {version: 0}
    nodes:
      - {id: draft, type: python, config: {code: "result = {'version': context['version'] + 1}"}}
      - id: review
        type: approval
        config: {title: "Version ${context.version}?", approvers: [ann@example.com], timeout: 1d}
    edges:
      - {source: draft, target: review}
      - {source: review, target: draft, condition: "${not context.approved}"}
"""


def test_an_approval_node_in_a_cycle_suspends_each_round(local, clock):
    run_id = local.engine.start_run(graph(REVISING), {})
    for version, decision in ((1, "REJECTED"), (2, "APPROVED")):
        waiting = settle(local, run_id)
        (request,) = waiting["approvals"]
        assert waiting["status"] == "RUNNING" and request["title"] == f"Version {version}?"
        local.engine.decide(request["url"].rsplit("/", 1)[1], decision, "")
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["outputs"]["context"]["version"] == 2 and view["outputs"]["context"]["decision"] == "APPROVED"


def test_a_graph_names_its_version_and_changelog():
    """A graph registers as a version of its workflow (seed 004's roadmap: graph versions); the compiler checks it."""
    text = ("id: g\nversion: \"1.1.0\"\nchangelog: adds a check\n"
            "nodes: [{id: a, type: python, config: {code: 'x = 1'}}]\nedges: []\n")
    plan = compile_workflow(text, "graph.yaml")
    assert (plan.workflow_id, plan.version, plan.changelog) == ("g", "1.1.0", "adds a check")
    assert compile_workflow(text.replace('version: "1.1.0"\n', ""), "graph.yaml").version == "1.0.0"
    assert [str(d) for d in validate_workflow(text.replace('"1.1.0"', "1.1"), "graph.yaml")] == [
        "graph.yaml:2:10: invalid version '1.1' (expected semantic versioning, e.g. 1.0.0)"]
