"""Rewind of a moving run into a loop's body (issue #13 item 4), in memory and on SQLite.

A run that has not ended is rewound into the body of a loop that has ended: the loop reopens at one
iteration as an ended run's does (test_engine_rewind_loop.py), and what runs after it is fenced off as a
moving run's rewind to the loop fences it (test_engine_rewind_moving.py). A loop mid-iteration refuses it.
"""

from __future__ import annotations

import pytest

from tests.unit.test_engine_redrive import killed_then_redelivered
from tests.unit.test_engine_rewind import local, ran  # noqa: F401 - fixtures
from tests.unit.test_engine_rewind_loop import SAGA_LOOP
from tests.unit.test_engine_rewind_moving import settle_all
from tests.unit.test_engine_semantics import deliver_twice, drive, start

# SAGA_LOOP with a wait after ship: the run is still moving (waiting on hold) once its loop has ended.
WAITING_AFTER = SAGA_LOOP.replace("  control_flow:", """\
    - {id: hold, type: wait, depends_on: [ship], config: {duration: 2m}}
    - {id: done, type: python, depends_on: [hold], config: {code: "result = tasks['ship']['output']"}}
  control_flow:""")
# SAGA_LOOP whose body waits an hour first in each iteration: mid-iteration for hours.
SLOW_LOOP = SAGA_LOOP.replace("- {id: fetch, type: python, config:", """\
- {id: nap, type: wait, config: {duration: 1h}}
          - {id: fetch, type: python, depends_on: [nap], config:""")
THE_REST = ["fetch.2", "score.2", "save.2", "ship", "done"]


def waiting_on_hold(local, clock, ran):  # noqa: F811
    """A run of WAITING_AFTER whose loop and ship have ended, waiting on hold; ``ran`` cleared."""
    run_id = start(local, WAITING_AFTER)
    view = settle_all(local, run_id)
    assert (view["status"], view["tasks"]["each"]["status"], view["tasks"]["hold"]["status"]) == (
        "RUNNING", "COMPLETED", "WAITING"), view
    ran.clear()
    clock.advance(60)  # half way through the wait
    return run_id, view


def test_a_moving_run_is_rewound_into_the_body_of_a_loop_that_has_ended(local, clock, ran):  # noqa: F811
    run_id, first = waiting_on_hold(local, clock, ran)
    asked = local.engine.rewind_run(run_id, "score", iteration=1, by="ops", reason="score was stale")
    assert asked == {"run_id": run_id, "status": "RUNNING", "changed": True, "rewind": 1, "to": "score",
                     "iteration": 1, "discarded": ["done", "hold", "ship", "save@each.1", "score@each.1"],
                     "compensating": []}
    done = drive(local, run_id, clock)  # the old hold's timer comes due first: stale, ignored
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["score.1", "save.1", *THE_REST]  # fetch.1 and iteration 0 kept
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]
    entries = local.history.of_run(run_id, limit=500).items
    runs = [(e.status, e.previous, e.reason) for e in entries if e.kind == "run"]
    assert ("PAUSED", "RUNNING", "paused to rewind 1 to 'score' in iteration 1 by ops (score was stale)") in runs
    assert ("RUNNING", "PAUSED", "rewind 1 to 'score' in iteration 1 by ops (score was stale): 1 tasks kept") in runs
    kept = {e.item for e in entries if e.reason == "kept by rewind 1 to 'score' in iteration 1, stamped with it"}
    assert kept == {"fetch@each.1"}


def test_with_compensate_what_ran_after_the_loop_is_undone_while_the_run_is_held(local, clock, ran):  # noqa: F811
    run_id, first = waiting_on_hold(local, clock, ran)
    asked = local.engine.rewind_run(run_id, "save", iteration=2, compensate=True)
    assert asked["compensating"] == ["ship"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and ran == ["unship", "save.2", "ship", "done"]
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


def test_a_loop_mid_iteration_refuses_a_rewind_into_its_body_and_one_that_discards_it(local, clock, ran):  # noqa: F811
    run_id = start(local, SLOW_LOOP)
    settle_all(local, run_id)
    clock.advance(3601)  # iteration 0 ends; iteration 1 waits on its nap: the loop is WAITING on it
    view = settle_all(local, run_id)
    assert view["tasks"]["each"]["status"] == "WAITING" and ran[-1] == "save.0"
    into = local.engine.rewind_run(run_id, "save", iteration=0)
    assert into["code"] == 409 and "'each', which is mid-iteration" in into["reason"], into
    before = local.engine.rewind_run(run_id, "begin")
    assert before["code"] == 409 and "the loop each that a rewind to this task discards is mid-iteration" in (
        before["reason"]), before
    assert local.queue.receive() is None  # nothing queued
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 0
    assert local.engine.rewind_run(run_id, "save", iteration=0)["changed"] is True  # ended: it can be now


def test_asked_twice_with_every_message_delivered_twice_it_rewinds_once(local, clock, ran):  # noqa: F811
    run_id, first = waiting_on_hold(local, clock, ran)
    assert local.engine.rewind_run(run_id, "score", iteration=1)["rewind"] == 1
    assert local.engine.rewind_run(run_id, "fetch", iteration=0)["rewind"] == 1  # dropped: the first began
    deliver_twice(local)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert sorted(ran) == sorted(["score.1", "save.1", *THE_REST])
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


@pytest.mark.parametrize("where", ["begin_rewind", "reset_task", "reopen_moving", "resolve_edge"])
def test_a_crash_anywhere_in_the_rewind_is_healed_by_its_redelivery(local, clock, ran, monkeypatch,  # noqa: F811
                                                                    where):
    run_id, first = waiting_on_hold(local, clock, ran)
    local.engine.rewind_run(run_id, "save", iteration=2)
    killed_then_redelivered(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and ran == ["save.2", "ship", "done"]
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


def test_a_moving_run_is_rewound_into_one_iteration_of_a_parallel_loop_that_has_ended(local, clock, ran):  # noqa: F811
    """Both at once: the run moves on after the loop (waiting on hold), and the loop's iterations ran in parallel,
    so the reopened iteration alone runs again and its end is the loop's (test_engine_rewind_parallel_loop.py)."""
    run_id = start(local, WAITING_AFTER.replace("iterator: n", "iterator: n\n        parallel: true\n"
                                                                "        max_concurrent: 2"))
    first = settle_all(local, run_id)
    assert (first["status"], first["tasks"]["each"]["status"], first["tasks"]["hold"]["status"]) == (
        "RUNNING", "COMPLETED", "WAITING"), first
    ran.clear()
    asked = local.engine.rewind_run(run_id, "score", iteration=0)
    assert asked["changed"] is True and asked["discarded"] == ["done", "hold", "ship", "save@each.0", "score@each.0"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["score.0", "save.0", "ship", "done"]  # no sibling ran again, though 0 is the first window's
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]

