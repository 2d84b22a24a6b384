"""Rewind into a loop's body, its choices alone (statemachine/loop_rewind.py): the iteration, what it keeps
there and what it refuses."""

from __future__ import annotations

from statemachine.compiler import compile_workflow
from statemachine.loop_rewind import body_discarded, body_kept, body_refusal, last_iteration, sibling_refusal
from statemachine.rewind import Refusal
from tests.unit.test_engine_loops import FOR_EACH, ONE_TASK

# A body with a fork: fetch feeds score and note, score feeds save.
FORKED = """
workflow:
  metadata: {id: forked}
  control_flow:
    loops:
      - id: each
        items: [1, 2]
        iterator: n
        tasks:
          - {id: fetch, type: python, config: {code: "result = n"}}
          - {id: score, type: python, depends_on: [fetch], config: {code: "result = 1"}}
          - {id: note, type: python, depends_on: [fetch], config: {code: "result = 2"}}
          - {id: save, type: python, depends_on: [score], config: {code: "result = 3"}}
"""
def plan(text):
    return compile_workflow(text, "w.yaml")


def test_the_body_tasks_downstream_of_the_task_run_again():
    forked = plan(FORKED)
    assert body_discarded(forked, "score") == {"score", "save"}
    assert body_discarded(forked, "fetch") == {"fetch", "score", "note", "save"}


def test_a_body_task_is_kept_when_it_finished_well_and_its_body_dependencies_are_kept():
    forked = plan(FORKED)
    gone = body_discarded(forked, "score")
    assert body_kept(forked, "each", gone, frozenset({"fetch", "score", "note", "save"})) == {"fetch", "note"}
    # note failed (uncaught) in that iteration: it runs again too; fetch never ended: nothing after it is kept.
    assert body_kept(forked, "each", gone, frozenset({"fetch", "score", "save"})) == {"fetch"}
    assert body_kept(forked, "each", gone, frozenset({"note"})) == frozenset()


def test_the_last_iteration_is_the_highest_that_started():
    statuses = {"each": "COMPLETED", "each.0": "COMPLETED", "each.1": "FAILED", "each.2": "PENDING",
                "square@each.1": "COMPLETED", "each:items:0": "COMPLETED", "eachother.5": "COMPLETED"}
    assert last_iteration("each", statuses) == 1
    assert last_iteration("each", {"each": "COMPLETED"}) is None
    # A for_each of one task keeps no item per iteration, only its task's (infra/engine/iterations.py).
    folded = {"each": "COMPLETED", "twice@each.0": "COMPLETED", "twice@each.3": "FAILED", "twice@each.4": "PENDING",
              "handler@twice@each.5": "PENDING", "twice@eachother.7": "COMPLETED"}
    assert last_iteration("each", folded) == 3


def test_refusals():
    loop = plan(FOR_EACH % {"extra": ""})
    ran = {"each.0": "COMPLETED", "square@each.0": "COMPLETED", "add@each.0": "FAILED", "each.1": "PENDING",
           "square@each.1": "PENDING"}
    assert body_refusal(loop, "add", None, ran, ended=True) is None  # iteration 0, FAILED: a checkpoint
    assert body_refusal(loop, "square", 0, ran, ended=True) is None
    assert body_refusal(loop, "square", 1, ran, ended=True) == Refusal(
        409, "in iteration 1 of the loop 'each', 'square' is PENDING: only a task that ran to its end (COMPLETED "
             "or FAILED) there is a checkpoint; choose another iteration, or a task before it")
    assert body_refusal(loop, "add", None, {}, ended=True) == Refusal(
        409, "no iteration of the loop 'each' ran: rewind to a task before it")
    # A moving run: refused while the loop is mid-iteration (claimed, or WAITING on its iterations), not once it ended.
    for busy in ("RUNNING", "WAITING"):
        moving = body_refusal(loop, "add", 0, {**ran, "each": busy}, ended=False)
        assert moving is not None and moving.status == 409 and "'each', which is mid-iteration" in moving.reason
    assert body_refusal(loop, "add", 0, {**ran, "each": "COMPLETED"}, ended=False) is None
    # Its iterations in parallel: no longer refused as such (sibling_refusal judges the others).
    assert body_refusal(plan(FOR_EACH % {"extra": "parallel: true"}), "add", 0, ran, ended=True) is None


def test_in_parallel_the_other_iterations_must_all_have_finished_well():
    loop = plan(FOR_EACH % {"extra": "parallel: true\n        max_concurrent: 2"})
    well = {"each.0": "COMPLETED", "each.1": "FAILED", "each.2": "COMPLETED"}
    # Iteration 1 reopened: its siblings, before and after it, completed.
    assert sibling_refusal(loop, "each", 1, well, 3, folded=False) is None
    assert sibling_refusal(loop, "each", 0, well, 3, folded=False) == Refusal(
        409, "iteration 1 of the loop 'each' is FAILED, and its iterations run in parallel: a rewind into "
             "iteration 0 reopens it alone and keeps the others as they ran, so rewind to the loop 'each' "
             "instead (all its iterations run again)")
    never = sibling_refusal(loop, "each", 1, well, 4, folded=False)
    assert never is not None and never.reason.startswith("iteration 3 of the loop 'each' is not started")
    # Folded into its one task's items: a skipped task finished well, a cancelled one did not.
    one = plan(ONE_TASK % {"parallel": "true"})
    tasks = {"twice@each.0": "SKIPPED", "twice@each.1": "FAILED", "twice@each.2": "CANCELLED", "each.2": "COMPLETED"}
    assert sibling_refusal(one, "each", 1, {**tasks, "twice@each.2": "COMPLETED"}, 3, folded=True) is None
    cancelled = sibling_refusal(one, "each", 1, tasks, 3, folded=True)
    assert cancelled is not None and cancelled.reason.startswith("iteration 2 of the loop 'each' is CANCELLED")
