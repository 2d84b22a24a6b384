"""Rewind into the body of a loop whose iterations run in parallel (issue #13 item 4): the reopened iteration is
the only one that runs again, the others are kept whatever their index, and its end is the loop's. In memory
and on SQLite."""

from __future__ import annotations

import pytest

from tests.unit.test_engine_loops import ONE_TASK
from tests.unit.test_engine_redrive import failed_run, killed_then_redelivered
from tests.unit.test_engine_rewind import completed_run, local, ran  # noqa: F401 - fixtures
from tests.unit.test_engine_semantics import deliver_twice, drive

# A task makes a list of five; five iterations over it, two at a time (the first window {0, 1}, then each
# ending one starts the one two further), a body of two tasks in a chain, and a task after the loop that reads
# its output.
PARALLEL = """
workflow:
  metadata: {id: parallel_loop}
  tasks:
    - {id: begin, type: python, config: {code: "result = [3, 1, 4, 1, 5]"}}
    - {id: after, type: python, depends_on: [each], config: {code: "result = tasks['each']['output']"}}
  control_flow:
    loops:
      - id: each
        items: "${tasks.begin.output}"
        iterator: n
        parallel: true
        %(limit)s
        tasks:
          - {id: fetch, type: python, config: {code: "result = n"}}
          - {id: score, type: python, depends_on: [fetch],
             config: {code: "result = tasks['fetch']['output'] * 10 + loop['index']"}}
"""
TWO_AT_A_TIME = PARALLEL % {"limit": "max_concurrent: 2"}
CLEAN = [30, 11, 42, 13, 54]
FOLDED = ONE_TASK % {"parallel": "true"}  # five iterations of one task, two at a time
FOLDED_CLEAN = [10, 13, 16, 19, 22]


def items_of(mode, run_id):
    return mode.store.list_tasks(run_id)


def written(mode, monkeypatch) -> list[str]:
    """The keys of every task change the store is asked for from now on (applied or refused by its
    condition): a sibling iteration started again, or its task claimed again, asks for one."""
    keys: list[str] = []
    real = mode.store.change_task

    def change_task(run_id, key, *args, **kwargs):
        keys.append(key)
        return real(run_id, key, *args, **kwargs)

    monkeypatch.setattr(mode.store, "change_task", change_task)
    return keys


def siblings(keys: list[str], index: int) -> list[str]:
    """Those of ``keys`` that belong to an iteration of ``each`` other than ``index``."""
    return [k for k in keys if "each." in k and not k.endswith(f"each.{index}")]


@pytest.mark.parametrize("task, iteration, again", [
    ("score", 1, ["score.1", "after"]),  # the first window: iteration 3, which its end started, is kept
    ("fetch", 2, ["fetch.2", "score.2", "after"]),  # a middle one
    ("score", None, ["score.4", "after"]),  # by default the last that ran
])
def test_only_the_reopened_iteration_runs_again_and_the_loop_ends_as_a_clean_run(local, clock, ran, monkeypatch,  # noqa: F811
                                                                                  task, iteration, again):
    run_id, first = completed_run(local, clock, ran, TWO_AT_A_TIME)
    assert first["tasks"]["each"]["output"] == CLEAN
    before = items_of(local, run_id)
    asked = local.engine.rewind_run(run_id, task, iteration=iteration)
    index = 4 if iteration is None else iteration
    assert asked["changed"] and asked["iteration"] == index
    keys = written(local, monkeypatch)
    done = drive(local, run_id, clock)
    # Its end was the loop's: no sibling was started again to walk the loop on from it.
    assert siblings(keys, index) == [] and f"score@each.{index}" in keys
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and ran == again
    assert done["tasks"]["each"]["output"] == CLEAN and done["tasks"]["after"]["output"] == CLEAN
    after = items_of(local, run_id)
    for other in set(range(5)) - {index}:  # siblings, earlier or later: untouched, of the first epoch
        for key in (f"each.{other}", f"fetch@each.{other}", f"score@each.{other}"):
            assert (after[key].status, after[key].redrive, after[key].ended_at) == (
                "COMPLETED", 0, before[key].ended_at), key
    assert after[f"each.{index}"].redrive == 1 and after["each"].status == "COMPLETED"


def test_without_a_limit_every_iteration_ran_at_once_and_the_first_is_reopened(local, clock, ran):  # noqa: F811
    run_id, _ = completed_run(local, clock, ran, PARALLEL % {"limit": ""})
    assert local.engine.rewind_run(run_id, "fetch", iteration=0)["discarded"] == [
        "after", "fetch@each.0", "score@each.0"]
    done = drive(local, run_id, clock)
    assert ran == ["fetch.0", "score.0", "after"] and done["tasks"]["each"]["output"] == CLEAN


@pytest.mark.parametrize("iteration", [0, 1, 3, 4])
def test_a_folded_loop_reopens_one_task_s_item_in_any_window(local, clock, ran, monkeypatch,  # noqa: F811
                                                             iteration):
    run_id, first = completed_run(local, clock, ran, FOLDED)
    assert first["tasks"]["each"]["output"] == FOLDED_CLEAN
    assert local.engine.rewind_run(run_id, "twice", iteration=iteration)["discarded"] == [f"twice@each.{iteration}"]
    keys = written(local, monkeypatch)
    done = drive(local, run_id, clock)
    assert siblings(keys, iteration) == []  # no other iteration's task claimed again
    assert done["status"] == "COMPLETED" and done["tasks"]["each"]["output"] == FOLDED_CLEAN
    assert ran == [f"twice.{iteration}"]
    items = items_of(local, run_id)
    assert not [key for key in items if key.startswith("each.")] and items["each"].loop_state["folded"]
    assert [items[f"twice@each.{i}"].redrive for i in range(5)] == [int(i == iteration) for i in range(5)]


@pytest.mark.parametrize("text, task, iteration, again, clean", [
    (TWO_AT_A_TIME, "fetch", 1, ["fetch.1", "score.1", "after"], CLEAN),
    (TWO_AT_A_TIME, "score", 4, ["score.4", "after"], CLEAN),
    (FOLDED, "twice", 2, ["twice.2"], FOLDED_CLEAN),
])
def test_every_message_delivered_twice_rewinds_once(local, clock, ran, text, task, iteration, again,  # noqa: F811
                                                    clean):
    run_id, _ = completed_run(local, clock, ran, text)
    local.engine.rewind_run(run_id, task, iteration=iteration)
    local.engine.rewind_run(run_id, task, iteration=0)  # dropped: the first began
    deliver_twice(local)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert sorted(ran) == sorted(again) and done["tasks"]["each"]["output"] == clean


@pytest.mark.parametrize("where", ["begin_rewind", "reset_task", "reopen_run", "resolve_edge"])
def test_a_crash_anywhere_in_the_rewind_is_healed_by_its_redelivery(local, clock, ran, monkeypatch,  # noqa: F811
                                                                    where):
    run_id, _ = completed_run(local, clock, ran, TWO_AT_A_TIME)
    local.engine.rewind_run(run_id, "score", iteration=1)
    killed_then_redelivered(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and ran == ["score.1", "after"]
    assert done["tasks"]["each"]["output"] == CLEAN


def test_a_sibling_that_did_not_finish_well_is_refused_naming_it(local, clock, ran):  # noqa: F811
    """A failed run's loop failed with its other iterations where they stood (iteration 1 started, 3 and 4
    never): reopening one would count them at the loop's end. Refused; the loop itself is rewound."""
    run_id, failed = failed_run(local, clock, ran, TWO_AT_A_TIME, "score.2")
    assert failed["tasks"]["each"]["status"] == "FAILED"
    for iteration in (0, 2):
        refused = local.engine.rewind_run(run_id, "fetch", iteration=iteration)
        assert (refused["changed"], refused["code"]) == (False, 409), refused
        assert refused["reason"].startswith("iteration 1 of the loop 'each' is RUNNING, and its iterations run in "
                                            f"parallel: a rewind into iteration {iteration} reopens it alone")
        assert "rewind to the loop 'each' instead" in refused["reason"]
    assert local.engine.describe_run(run_id)["redrives"] == 0
    assert local.engine.rewind_run(run_id, "each")["changed"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["each"]["output"] == CLEAN


def test_a_folded_sibling_that_failed_is_refused(local, clock, ran):  # noqa: F811
    run_id, _ = failed_run(local, clock, ran, FOLDED, "twice.1")
    refused = local.engine.rewind_run(run_id, "twice", iteration=0)
    assert refused["code"] == 409 and refused["reason"].startswith("iteration 1 of the loop 'each' is FAILED")


def test_rewound_again_into_another_iteration_then_to_the_loop(local, clock, ran):  # noqa: F811
    """The reopened iteration is of epoch 1, a sibling like any other for a second rewind; a third, to the loop
    itself, runs every iteration again (the reopened state is not left behind to reopen it instead)."""
    run_id, _ = completed_run(local, clock, ran, TWO_AT_A_TIME)
    local.engine.rewind_run(run_id, "score", iteration=1)
    drive(local, run_id, clock)
    assert local.engine.rewind_run(run_id, "fetch", iteration=3)["rewind"] == 2
    done = drive(local, run_id, clock)
    assert ran == ["score.1", "after", "fetch.3", "score.3", "after"] and done["tasks"]["each"]["output"] == CLEAN
    assert local.engine.rewind_run(run_id, "each")["rewind"] == 3
    ran.clear()
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 3 and done["tasks"]["each"]["output"] == CLEAN
    assert sorted(ran) == sorted([f"{t}.{i}" for t in ("fetch", "score") for i in range(5)] + ["after"])


def test_a_failed_run_is_rewound_into_its_failed_iteration_when_every_other_completed(local, clock, ran):  # noqa: F811
    run_id, failed = failed_run(local, clock, ran, PARALLEL % {"limit": ""}, "score.4")  # the last to run: repaired
    assert failed["tasks"]["each"]["status"] == "FAILED"
    assert local.engine.rewind_run(run_id, "score")["iteration"] == 4
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["error"] is None and ran == ["score.4", "after"]
    assert done["tasks"]["each"]["output"] == CLEAN and done["tasks"]["after"]["output"] == CLEAN
