"""A graph run's input is merged into its shared context (docs/graph-form.md, "The context"): the
document's context is the defaults, the input's keys win, shallowly; a workflow file's variables are
untouched by its input."""

from __future__ import annotations

import textwrap

from statemachine.compiler import compile_workflow
from statemachine.inputs import initial_variables, prepare_inputs
from tests.unit.test_engine_semantics import drive

SCORING = """
    context: {threshold: 10, label: draft, nested: {a: 1, b: 2}}
    nodes:
      - {id: score, type: python, config: {code: "result = {'score': context['base'] * 2}"}}
      - {id: high, type: python, config: {code: "result = {'verdict': 'high ' + context['label']}"}}
      - {id: low, type: python, config: {code: "result = {'verdict': 'low ' + context['label']}"}}
    edges:
      - {source: score, target: high, condition: "${context.score > context.threshold}"}
      - {source: score, target: low, condition: "${context.score <= context.threshold}"}
"""


def graph(text: str = SCORING):
    return compile_workflow(textwrap.dedent(text), "graph.yaml")


def test_the_input_is_the_initial_context_over_the_documents_defaults(local, clock):
    run_id = local.engine.start_run(graph(), {"base": 7, "label": "final", "nested": {"a": 9}})
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["high"]["status"] == "COMPLETED" and view["tasks"]["low"]["status"] == "SKIPPED"
    # base came from the input, threshold from the document; label and nested were overridden whole.
    assert view["outputs"]["context"] == {"threshold": 10, "label": "final", "nested": {"a": 9}, "base": 7,
                                          "score": 14, "verdict": "high final"}


def test_an_input_key_can_change_a_branch(local, clock):
    run_id = local.engine.start_run(graph(), {"base": 7, "threshold": 20})
    view = drive(local, run_id, clock)
    assert view["tasks"]["low"]["status"] == "COMPLETED" and view["outputs"]["context"]["verdict"] == "low draft"


def test_without_input_the_context_is_the_documents():
    plan = graph()
    assert plan.input_into == "context"
    assert initial_variables(plan, prepare_inputs(plan, None))["context"] == {
        "threshold": 10, "label": "draft", "nested": {"a": 1, "b": 2}}


def test_the_merge_never_shares_the_input_or_the_plans_default():
    plan = graph()
    given = {"nested": {"a": 9}}
    variables = initial_variables(plan, given)
    variables["context"]["nested"]["a"] = 0
    initial_variables(plan, {})["context"]["nested"]["b"] = 0
    variables["context"]["threshold"] = 0
    assert given == {"nested": {"a": 9}} and plan.variables[0].default["threshold"] == 10
    assert plan.variables[0].default["nested"] == {"a": 1, "b": 2}


def test_a_workflow_files_variables_take_no_input():
    plan = compile_workflow(textwrap.dedent("""
        workflow:
          metadata: {id: plain}
          variables: [{name: context, type: object, default: {a: 1}}]
          tasks: [{id: t, type: python, config: {code: "result = 1"}}]
    """), "plain.yaml")
    assert plan.input_into is None and "input_into" not in plan.to_json()
    assert initial_variables(plan, {"b": 2}) == {"context": {"a": 1}}
