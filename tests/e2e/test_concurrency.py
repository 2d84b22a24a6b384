"""Issue #5 item 2, deterministically: two deliveries on one run, in every interleaving of their AWS calls.

The first invocation is stopped right after its k-th AWS call, the second runs to its end, then
the first goes on, for every k (tests/e2e/concurrent_runs.py ``interleavings``). moto is made
linearizable per request (tests/concurrency.py), as DynamoDB and SQS are, so each interleaving
is one concurrent Lambdas could produce. After both, the run is driven to its end and must equal
a clean run, every task's action having run once (a double advance would run one twice, or
change an output or an attempt count). Approvals and callbacks: test_concurrency_links.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.e2e.concurrent_runs import (
    CHAIN,
    FAN_IN,
    FAN_OUT,
    FAN_OUT_ACTIONS,
    WAIT,
    exec_of,
    interleavings,
    no_problems,
    start_of,
    summary,
    timer_input,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def clean_run(bench, text, through=None):
    """A run with no interference; ``through`` does what a plain run needs from outside."""
    run_id = bench.start(text)
    if through:
        through(run_id)
    return summary(bench.finish(run_id)), bench.actions(run_id)


def same_as_clean(bench, clean):
    def check(ctx, first, second):
        first.get(), second.get()  # deliver() reports failed records itself: an exception is the harness's
        done = bench.finish(ctx[0])
        problems = []
        if summary(done) != clean[0]:
            problems.append({"summary": summary(done), "clean": clean[0]})
        if bench.actions(ctx[0]) != clean[1]:
            problems.append({"actions": dict(bench.actions(ctx[0])), "clean": dict(clean[1])})
        return problems
    return check


@pytest.fixture
def queued(monkeypatch):
    """A ready task's exec goes through the queue, as when the worker that made it ready had no time
    left to carry it on (infra/engine/carry_on.py): these tests hold that message. Carried on, the
    same two deliveries are one invocation (the same start message twice, above, covers that)."""
    from infra.wiring import get_engine

    monkeypatch.setattr(get_engine().carry_on, "limit", 0)


def deliver(bench, which):
    """An invocation of the worker with the held message ``ctx[1][which]`` as its batch."""
    return lambda ctx: bench.lambdas.deliver(ctx[1][which])


# ------------------------------------------------------------ the same message twice


def test_the_same_start_message_twice_in_every_interleaving(bench):
    clean = clean_run(bench, CHAIN)
    assert clean[1] == Counter(a=1, b=1) and clean[0][1] == {"b": 20}

    def prepare():
        run_id = bench.start(CHAIN)
        return run_id, bench.hold(start_of(run_id))

    # SQS hands the same message to a second worker while the first still has it; its handling runs
    # a, the first task, in the same invocation.
    _, problems = interleavings(bench, prepare, deliver(bench, 0), deliver(bench, 0), same_as_clean(bench, clean))
    no_problems(problems)


def test_a_timer_firing_twice_in_every_interleaving(bench):
    def to_the_timer(run_id):
        bench.step_past(start_of(run_id))  # it runs pause: the wait has begun, its schedule exists
        body = timer_input(bench.runtime.aws, run_id)
        bench.clock.advance(timedelta(hours=2, seconds=1).total_seconds())
        return body

    clean = clean_run(bench, WAIT, through=lambda run_id: bench.send(to_the_timer(run_id), 1) and None)
    assert clean[0][2]["after"] == ("COMPLETED", "woke", 1)

    def prepare():
        run_id = bench.start(WAIT)
        return run_id, bench.send(to_the_timer(run_id), 2)  # the scheduler delivers its input twice

    _, problems = interleavings(bench, prepare, deliver(bench, 0), deliver(bench, 1), same_as_clean(bench, clean))
    no_problems(problems)


# ------------------------------------------------------------ two workers on one run


def test_the_two_branches_of_a_join_finishing_in_every_interleaving(bench, queued):
    clean = clean_run(bench, FAN_IN)
    assert clean[0][1] == {"z": 12} and clean[1] == Counter(x=1, y=1, z=1)

    def prepare():
        run_id = bench.start(FAN_IN)
        return run_id, bench.hold(exec_of(run_id, "x"), exec_of(run_id, "y"))

    _, problems = interleavings(bench, prepare, deliver(bench, 0), deliver(bench, 1), same_as_clean(bench, clean))
    no_problems(problems)


# ------------------------------------------------------------ out of order


@pytest.mark.parametrize("late_first", [False, True], ids=["next-task-paused", "late-duplicate-paused"])
def test_a_late_duplicate_of_a_finished_task_against_the_next_task(bench, late_first, queued):
    """a has finished and b's exec is out; a's exec comes again (a late duplicate) while b runs."""
    clean = clean_run(bench, CHAIN)

    def prepare():
        run_id = bench.start(CHAIN)
        [message_a] = bench.hold(exec_of(run_id, "a"))
        bench.lambdas.deliver(message_a)
        [message_b] = bench.hold(exec_of(run_id, "b"))
        [again_a] = bench.send(message_a["Body"], 1)
        return run_id, [message_b, again_a]

    next_task, late = deliver(bench, 0), deliver(bench, 1)
    _, problems = interleavings(bench, prepare, late if late_first else next_task,
                                next_task if late_first else late, same_as_clean(bench, clean))
    no_problems(problems)


def test_every_message_of_a_finished_run_again_in_reverse_order_changes_nothing(bench):
    run_id = bench.start(FAN_OUT)
    bodies = []
    real_deliver = bench.lambdas.deliver

    def recording(*messages):
        bodies.extend((m["_queue"], m["Body"]) for m in messages if f'"run":"{run_id}"' in m["Body"])
        return real_deliver(*messages)

    bench.lambdas.deliver = recording
    try:
        done = bench.finish(run_id)
    finally:
        bench.lambdas.deliver = real_deliver
    before, actions = summary(done), bench.actions(run_id)
    assert len(bodies) >= 10  # start, and an exec per task and loop iteration
    for queue, body in reversed(bodies):  # the task runner's results too, on their own queue
        [message] = bench.send(body, 1, queue)
        bench.lambdas.deliver(message)
    assert summary(bench.finish(run_id)) == before
    assert bench.actions(run_id) == actions == FAN_OUT_ACTIONS
    assert bench.lambdas.errors == []
