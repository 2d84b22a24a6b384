"""A message redelivered after its process died mid-way decides nothing again on state that has moved on
since: found by bench/crash_points.py on a graph with a cycle (docs/graph-form.md), which is a do_while
loop whose body tasks are skipped by their ``when`` and export the shared context.

- A task skipped by its ``when`` in the invocation that carried it (carry_on.py), the process dying right
  after the skip was written: the redelivery finds it skipped and must carry it on (its dependents, or its
  iteration's end), not take the skip for somebody else's.
- An iteration whose end was decided (the next one started), the process dying before the message was
  done: the next iteration exports meanwhile, and the redelivery must not evaluate the loop's condition
  again on those exports (it would end the loop early).

Each runs on the in-memory store and on the SQLite state file, crashing at the write found.
"""

from __future__ import annotations

import pytest

from bench.crash_points import WORKFLOWS, Crash
from infra.ports import TaskChange
from loopline.memory.local_mode import LocalMode
from tests.unit.test_engine_semantics import drive, start

# The harness's reproductions (bench/crash_points.py), the graph's as issue #14 gave it.
SKIPPED_BY_WHEN = WORKFLOWS["skipped_by_when"]
DO_WHILE_EXPORTS = WORKFLOWS["do_while_exports"]
GRAPH_CYCLE = WORKFLOWS["graph_cycle"]
GRAPH_STEPS = [{"a": {"context": {"n": 1}, "last": "a"}, "b": None},
               {"a": None, "b": {"context": {"n": 1, "seen": 1}, "last": "b"}},
               {"a": {"context": {"n": 2, "seen": 1}, "last": "a"}, "b": None},
               {"a": None, "b": {"context": {"n": 2, "seen": 2}, "last": "b"}}]


@pytest.fixture(params=["memory", "sqlite"])
def local(request, clock, tmp_path):
    mode = LocalMode(clock=clock, inline_code=True, state=tmp_path if request.param == "sqlite" else None)
    yield mode
    mode.close()


def _handle_until_crash(local, task_id: str, status: str, after: bool) -> None:
    """Handle results and messages one at a time, as a process does, until the write of ``task_id`` ending
    in ``status``: the process dies there (before it, or right after it), the message it was handling
    unacknowledged (it comes back after its visibility timeout, as to a process started again)."""
    real = local.store.change_task

    def dying(run, key, change: TaskChange, *rest, **kw):
        if key == task_id and change.status == status:
            if after:
                real(run, key, change, *rest, **kw)
            raise Crash(f"died {'after' if after else 'before'} writing {key} {status}")
        return real(run, key, change, *rest, **kw)

    local.store.change_task = dying
    try:
        for _ in range(500):
            for source, handle in ((local.results, local.engine.accept_result),
                                   (local.queue, lambda body: local.engine.handle(local.queue.read(body)))):
                delivery = source.claim()
                if delivery is not None:
                    handle(delivery.body)  # a Crash leaves it unacknowledged
                    source.ack(delivery)
                    break
            else:
                raise AssertionError(f"the run never wrote {task_id} {status}")
    except Crash:
        return
    finally:
        local.store.change_task = real
    raise AssertionError("the run went on for too long")


def _after_the_crash(local, run_id, clock) -> dict:
    """What was sent before the crash is handled first (on its own, as other workers would), then the
    crashed message comes back, and the run is driven to its end."""
    while local.pump_once():
        pass
    clock.advance(3600)  # past every lease and visibility timeout
    return drive(local, run_id, clock)


def test_a_carried_task_skipped_by_its_when_is_carried_on_by_the_redelivery(local, clock):
    run_id = start(local, SKIPPED_BY_WHEN)
    _handle_until_crash(local, "maybe", "SKIPPED", after=True)
    view = _after_the_crash(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert {k: t["status"] for k, t in view["tasks"].items()} == {
        "due": "COMPLETED", "maybe": "SKIPPED", "after": "COMPLETED"}


def test_a_redelivered_iteration_end_does_not_decide_the_loop_again_on_later_exports(local, clock):
    run_id = start(local, DO_WHILE_EXPORTS)
    # Iteration 1 starts: `note` is carried on by the invocation that ended iteration 0, `inc` is sent
    # (and exports n = 2 before that invocation's message comes back).
    _handle_until_crash(local, "note@count.1", "RUNNING", after=True)
    view = _after_the_crash(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["count"]["output"] == [{"note": 0, "inc": {"n": 1}}, {"note": 1, "inc": {"n": 2}}]


@pytest.mark.parametrize(("task_id", "after"), [
    ("a@recursion_limit.1", True),  # the skip of a carried node written, then the crash: the run hung
    ("a@recursion_limit.3", False),  # the last step's b exports first: the loop ended after 3 steps of 4
])
def test_a_graph_with_a_cycle_runs_every_step_across_a_crash(local, clock, task_id, after):
    run_id = start(local, GRAPH_CYCLE)
    _handle_until_crash(local, task_id, "SKIPPED", after=after)
    view = _after_the_crash(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["outputs"] == {"context": {"n": 2, "seen": 2}}
    assert view["tasks"]["recursion_limit"]["output"] == GRAPH_STEPS
