"""Pause and resume (issue #5 item 5): a paused run starts nothing new, loses nothing, and resumes."""

from __future__ import annotations

from tests.unit.test_engine_semantics import drive, settle, start

FLOW = """
workflow:
  metadata: {id: pausable}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: nap, type: wait, depends_on: [a], config: {duration: 1h}}
    - {id: b, type: python, depends_on: [nap], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: hook, type: callback, depends_on: [a]}
    - {id: c, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['n']"}}
  outputs:
    mappings: {b: "${tasks.b.output}", c: "${tasks.c.output}"}
"""


def test_pause_parks_new_work_and_resume_finishes_the_run(local, clock, actions):
    run_id = start(local, FLOW)
    view = settle(local, run_id)
    assert view["tasks"]["nap"]["status"] == "WAITING" and view["callbacks"]
    assert local.engine.pause_run(run_id)["changed"] is True
    assert local.engine.pause_run(run_id)["changed"] is False  # already paused
    # while paused: the timer fires and a callback arrives; nothing new starts
    token = view["callbacks"][0]["url"].rsplit("/", 1)[1]
    local.engine.submit_callback(token, {"n": 7})
    clock.advance(3601)
    view = settle(local, run_id)
    assert view["status"] == "PAUSED"
    assert view["tasks"]["hook"]["status"] == "COMPLETED"  # the answer is kept...
    assert view["tasks"]["c"]["status"] == "PENDING"  # ...but its dependent waits
    assert view["tasks"]["nap"]["status"] == "WAITING" and view["tasks"]["b"]["status"] == "PENDING"
    assert actions == ["a"]
    assert local.engine.resume_run(run_id)["changed"] is True
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["outputs"] == {"b": 2, "c": 7}
    assert sorted(actions) == ["a", "b", "c"]


def test_a_run_whose_last_task_ended_while_paused_finishes_on_resume(local, clock):
    run_id = start(local, """
    workflow:
      metadata: {id: short}
      tasks:
        - {id: hook, type: callback}
    """)
    view = settle(local, run_id)
    local.engine.pause_run(run_id)
    local.engine.submit_callback(view["callbacks"][0]["url"].rsplit("/", 1)[1], {"ok": True})
    assert settle(local, run_id)["status"] == "PAUSED"
    local.engine.resume_run(run_id)
    assert settle(local, run_id)["status"] == "COMPLETED"


def test_pause_and_resume_only_from_the_right_state(local, clock):
    run_id = start(local, "workflow:\n  metadata: {id: quick}\n  tasks:\n"
                          "    - {id: a, type: python, config: {code: 'result = 1'}}\n")
    assert local.engine.resume_run(run_id)["changed"] is False  # not paused
    drive(local, run_id, clock)
    assert local.engine.pause_run(run_id)["changed"] is False  # ended
    assert local.engine.pause_run("nope") is None
