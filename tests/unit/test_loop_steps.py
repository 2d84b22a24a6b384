"""What follows a loop's iteration, decided without a store (statemachine/loop_steps.py)."""

from __future__ import annotations

import pytest

from statemachine.loop_steps import AfterIteration, after_iteration, folded_status, folded_task, following_index

OK, FAILED = {"status": "COMPLETED"}, {"status": "FAILED", "error": {"type": "KeyError", "message": "k"}}
FOR_EACH = {"parallel": False, "max_iterations": 100}
PARALLEL = {"parallel": True, "max_concurrent": 2, "max_iterations": 100}
UNBOUNDED = {"parallel": True, "max_concurrent": None, "max_iterations": 100}
WHILE = {"parallel": False, "max_iterations": 3, "condition": "x"}


def never() -> bool:
    raise AssertionError("a condition was evaluated that the decision does not need")


@pytest.mark.parametrize("config, total, index, outcome, broke, holds, expected", [
    (FOR_EACH, 3, 0, OK, never, never, AfterIteration(start=1)),
    (FOR_EACH, 3, 2, OK, never, never, AfterIteration(finish_after=3)),
    (FOR_EACH, 3, 1, FAILED, never, never, AfterIteration(fail=("KeyError", "iteration 1: k"))),
    ({**FOR_EACH, "break_on": "y"}, 3, 0, OK, lambda: True, never, AfterIteration(finish_after=1)),
    ({**FOR_EACH, "break_on": "y"}, 3, 0, OK, lambda: False, never, AfterIteration(start=1)),
    (PARALLEL, 5, 1, OK, never, never, AfterIteration(start=3)),  # not the end: the iteration it starts ends later
    (PARALLEL, 5, 4, OK, never, never, AfterIteration(finish_after=5, count=True)),
    (UNBOUNDED, 5, 4, OK, never, never, AfterIteration(finish_after=5, count=True)),
    (WHILE, None, 0, OK, never, lambda i: True, AfterIteration(start=1)),
    (WHILE, None, 1, OK, never, lambda i: False, AfterIteration(finish_after=2)),
    (WHILE, None, 2, OK, never, lambda i: True,
     AfterIteration(fail=("MaxIterationsExceeded", "still looping after max_iterations (3)"))),
])
def test_each_iteration_end_gets_its_step(config, total, index, outcome, broke, holds, expected):
    step = after_iteration(config, total, index, outcome, broke, holds)
    assert (step.start, step.finish_after, step.count, step.fail) == (
        expected.start, expected.finish_after, expected.count, expected.fail)
    assert step.why


def test_the_following_iteration_and_a_loop_that_cannot_go_on():
    assert [following_index(c, 3) for c in (FOR_EACH, PARALLEL, UNBOUNDED)] == [4, 5, None]
    with pytest.raises(ValueError, match="without a count"):
        after_iteration(UNBOUNDED, None, 0, OK, never, never)


LOOP = """
workflow:
  metadata: {id: folds}
  %(catch)s
  tasks:
    - {id: handle, type: python, config: {code: "result = 1"}}
  control_flow:
    loops:
      - id: each
        %(kind)s
        tasks:
          - {id: one, type: wait, config: {duration: 0s}}
          %(more)s
"""


@pytest.mark.parametrize("kind, more, catch, folded", [
    ("items: [1, 2]", "", "", "one"),
    ("items: [1, 2]\n        parallel: true", "", "", "one"),
    ("items: [1, 2]", "- {id: two, type: wait, depends_on: [one], config: {duration: 0s}}", "", None),
    ("items: [1, 2]\n        break_on: \"${loop.index > 0}\"", "", "", None),
    ("type: do_while\n        condition: \"${loop.index < 1}\"\n        max_iterations: 3", "", "", None),
    ("items: [1, 2]", "", "error_handling: {catch: [{handler: handle}]}", None),
])
def test_a_for_each_of_one_task_without_break_on_or_catch_is_folded_into_its_task(kind, more, catch, folded):
    from tests.conftest import compile_yaml

    plan = compile_yaml(LOOP % {"kind": kind, "more": more, "catch": catch})
    assert folded_task(plan, plan.nodes["each"]) == folded


def test_a_folded_iteration_s_status_is_its_task_s_as_an_iteration_item_would_have_ended():
    assert [folded_status(s) for s in (None, "PENDING", "RUNNING", "WAITING", "RETRYING")] == \
        [None, None, "RUNNING", "RUNNING", "RUNNING"]
    assert [folded_status(s) for s in ("COMPLETED", "SKIPPED", "CANCELLED", "FAILED")] == \
        ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"]


@pytest.mark.parametrize("index, outcome, expected", [
    (1, OK, AfterIteration(finish_after=5, count=True)),  # an early window's: starts none, the loop's end
    (4, OK, AfterIteration(finish_after=5, count=True)),
    (1, FAILED, AfterIteration(fail=("KeyError", "iteration 1: k"))),  # failed, it fails the loop as ever
])
def test_a_parallel_iteration_a_rewind_reopened_ends_the_loop(index, outcome, expected):
    step = after_iteration(PARALLEL, 5, index, outcome, never, never, reopened=True)
    assert (step.start, step.finish_after, step.count, step.fail) == (
        expected.start, expected.finish_after, expected.count, expected.fail)
    # One after another, the reopened iteration's end goes on as any does (the rewind reset the later ones).
    assert after_iteration(FOR_EACH, 3, 0, OK, never, never, reopened=True).start == 1
