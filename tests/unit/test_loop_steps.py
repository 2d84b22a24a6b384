"""What follows a loop's iteration, decided without a store (statemachine/loop_steps.py)."""

from __future__ import annotations

import pytest

from statemachine.loop_steps import AfterIteration, after_iteration, following_index

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
