"""Sub-workflows: a registry of definitions, child runs with inputs and outputs, stopping children."""

from __future__ import annotations

from tests.conftest import compile_yaml
from tests.unit.test_engine_semantics import drive, start

CHILD = """
workflow:
  metadata: {id: child_wf, version: "%s"}
  inputs:
    schema: {type: object, properties: {n: {type: integer}}, required: [n]}
  tasks:
    - {id: double, type: python, config: {code: "%s"}}
  outputs:
    mappings: {doubled: "${tasks.double.output}"}
"""

PARENT = """
workflow:
  metadata: {id: parent}
  tasks:
    - {id: seed, type: python, config: {code: "result = 21"}}
    - {id: after, type: python, depends_on: [kid], config: {code: "result = tasks['kid']['output']"}}
  sub_workflows:
    - id: kid
      workflow_ref: %s
      inputs: {n: "${tasks.seed.output}"}
      %s
"""


def register(local, version="1.0.0", code="result = inputs['n'] * 2"):
    local.engine.register_workflow(compile_yaml(CHILD % (version, code)))


def test_a_child_run_gets_inputs_and_gives_its_outputs(local, clock):
    register(local, "1.0.0")
    register(local, "1.10.0", "result = inputs['n'] * 100")
    view = drive(local, start(local, PARENT % ("child_wf@1.0.0", "")), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["kid"]["output"] == {"doubled": 42}
    assert view["tasks"]["after"]["output"] == {"doubled": 42}
    newest = drive(local, start(local, PARENT % ("child_wf", "")), clock)  # no version: the newest
    assert newest["tasks"]["kid"]["output"] == {"doubled": 2100}


def test_outputs_map_the_child_result(local, clock):
    register(local)
    view = drive(local, start(local, PARENT % ("child_wf", 'outputs: {plus_one: "${child.outputs.doubled + 1}"}')),
                 clock)
    assert view["tasks"]["kid"]["output"] == {"plus_one": 43}


def test_an_unregistered_workflow_fails_the_task(local, clock):
    view = drive(local, start(local, PARENT % ("nowhere", "")), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["kid"]["error"]["type"] == "WorkflowNotFound"


def test_a_failing_child_fails_the_task(local, clock):
    register(local, code="raise ValueError('child broke')")
    view = drive(local, start(local, PARENT % ("child_wf", "")), clock)
    assert view["status"] == "FAILED"
    assert view["tasks"]["kid"]["error"]["type"] == "ValueError"
    assert "child broke" in view["tasks"]["kid"]["error"]["message"]


def test_stopping_the_parent_stops_the_child(local, clock):
    local.engine.register_workflow(compile_yaml("""
    workflow:
      metadata: {id: slow_child}
      tasks:
        - {id: hold, type: callback}
    """))
    text = """
    workflow:
      metadata: {id: impatient}
      config: {timeout: 1h}
      sub_workflows:
        - {id: kid, workflow_ref: slow_child}
    """
    run_id = start(local, text)
    view = drive(local, run_id, clock)
    assert view["status"] == "FAILED" and view["error"]["type"] == "WorkflowTimeout"
    assert view["tasks"]["kid"]["status"] == "CANCELLED"
    child_id = f"{run_id}-kid-1"
    child = local.engine.describe_run(child_id)
    assert child["status"] == "CANCELLED" and child["error"]["type"] == "Cancelled"
    assert child["tasks"]["hold"]["status"] == "CANCELLED"


def test_a_sub_workflow_timeout(local, clock):
    local.engine.register_workflow(compile_yaml("""
    workflow:
      metadata: {id: slow_child}
      tasks:
        - {id: hold, type: callback}
    """))
    view = drive(local, start(local, """
    workflow:
      metadata: {id: bounded}
      sub_workflows:
        - {id: kid, workflow_ref: slow_child, timeout: 10m}
    """), clock)
    assert view["tasks"]["kid"]["error"]["type"] == "SubWorkflowTimeout"


def test_cancel_stops_the_run_its_children_and_compensates_on_cancel(local, clock):
    local.engine.register_workflow(compile_yaml("""
    workflow:
      metadata: {id: slow_child}
      tasks:
        - {id: hold, type: callback}
    """))
    run_id = start(local, """
    workflow:
      metadata: {id: cancellable}
      tasks:
        - id: book
          type: python
          config: {code: "result = 'booked'"}
          compensation: {task_id: unbook, on_failure: false, on_cancel: true}
        - {id: unbook, type: python, config: {code: "result = 'unbooked'"}}
        - {id: hold, type: callback, depends_on: [book]}
        - {id: after, type: python, depends_on: [hold], config: {code: "result = 1"}}
      sub_workflows:
        - {id: kid, workflow_ref: slow_child, depends_on: [book]}
    """)
    while local.pump_once():
        pass
    assert local.engine.describe_run(run_id)["tasks"]["hold"]["status"] == "WAITING"
    assert local.engine.cancel_run(run_id)["cancelled"] is True
    view = drive(local, run_id, clock)
    assert view["status"] == "CANCELLED" and view["error"]["type"] == "Cancelled"
    assert {k: t["status"] for k, t in view["tasks"].items()} == {
        "book": "COMPLETED", "unbook": "COMPLETED", "hold": "CANCELLED", "after": "CANCELLED", "kid": "CANCELLED"}
    child = local.engine.describe_run(f"{run_id}-kid-1")
    assert child["status"] == "CANCELLED" and child["tasks"]["hold"]["status"] == "CANCELLED"
    assert local.engine.cancel_run(run_id)["cancelled"] is False  # already ended
    assert local.engine.cancel_run("nope") is None
