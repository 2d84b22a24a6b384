"""Rewind into a loop's body (issue #13 item 4): the loop reopens at one iteration, in memory and on SQLite."""

from __future__ import annotations

import pytest

from tests.unit.test_engine_loops import FOR_EACH, ONE_TASK, WHILE
from tests.unit.test_engine_redrive import failed_run, killed_then_redelivered
from tests.unit.test_engine_rewind import completed_run, local, ran  # noqa: F401 - fixtures
from tests.unit.test_engine_semantics import deliver_twice, drive

EACH = FOR_EACH % {"extra": ""}
COUNT = WHILE % {"kind": "while", "start": 0, "limit": 10}
# A for_each over what a task before it made, whose body has three tasks in a chain, and a task after the loop
# that declares a compensation.
SAGA_LOOP = """
workflow:
  metadata: {id: saga_loop}
  tasks:
    - {id: begin, type: python, config: {code: "result = [1, 2, 3]"}}
    - {id: ship, type: python, depends_on: [each], config: {code: "result = len(tasks['each']['output'])"},
       compensation: {task_id: unship}}
    - {id: unship, type: python, config: {code: "result = 'unshipped'"}}
  control_flow:
    loops:
      - id: each
        items: "${tasks.begin.output}"
        iterator: n
        tasks:
          - {id: fetch, type: python, config: {code: "result = n"}}
          - {id: score, type: python, depends_on: [fetch], config: {code: "result = tasks['fetch']['output'] * 10"}}
          - {id: save, type: python, depends_on: [score], config: {code: "result = tasks['score']['output'] + 1"}}
"""


def test_a_body_task_reopens_the_last_iteration_keeping_its_earlier_ones(local, clock, ran):  # noqa: F811
    run_id, first = completed_run(local, clock, ran, EACH)
    asked = local.engine.rewind_run(run_id, "add", by="ops", reason="add read a stale total")
    assert asked == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1, "to": "add",
                     "iteration": 2, "discarded": ["after", "add@each.2"], "compensating": []}
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["add.2", "after"]  # square.2 and the iterations before are kept
    before, after = first["tasks"]["each"]["output"], done["tasks"]["each"]["output"]
    assert after[:2] == before[:2]
    # The variables are not rewound: add.2 adds square.2 (kept: 4 * 4 + 2) to the total as it stands.
    assert after[2] == {"total": before[2]["total"] + 18, "item": 4}
    assert done["tasks"]["after"]["output"] == after


def test_a_for_each_of_one_task_reopens_with_its_iterations_still_in_its_tasks_items(local, clock, ran):  # noqa: F811
    """Its iterations have no item of their own (infra/engine/iterations.py): the last that ran is found from
    its task's items, and the loop reopens folded, each iteration still kept in its task's item."""
    run_id, first = completed_run(local, clock, ran, ONE_TASK % {"parallel": "false"})
    assert first["tasks"]["each"]["output"] == [10, 13, 16, 19, 22]
    asked = local.engine.rewind_run(run_id, "twice")
    assert (asked["iteration"], asked["discarded"]) == (4, ["twice@each.4"])
    assert drive(local, run_id, clock)["tasks"]["each"]["output"] == [10, 13, 16, 19, 22] and ran == ["twice.4"]
    assert local.engine.rewind_run(run_id, "twice", iteration=2)["iteration"] == 2
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["each"]["output"] == [10, 13, 16, 19, 22]
    assert ran[1:] == ["twice.2", "twice.3", "twice.4"]
    items = local.store.list_tasks(run_id)
    assert not [key for key in items if key.startswith("each.")] and items["each"].loop_state["folded"]


def test_an_earlier_iteration_runs_it_and_every_later_one_again(local, clock, ran):  # noqa: F811
    run_id, first = completed_run(local, clock, ran, EACH)
    asked = local.engine.rewind_run(run_id, "square", iteration=1)
    assert asked["iteration"] == 1 and asked["discarded"] == ["after", "add@each.1", "square@each.1"]
    done = drive(local, run_id, clock)
    assert ran == ["square.1", "add.1", "square.2", "add.2", "after"]
    assert done["tasks"]["each"]["output"][0] == first["tasks"]["each"]["output"][0]
    assert [o["item"] for o in done["tasks"]["each"]["output"]] == [3, 1, 4]


def test_a_while_loop_reopens_without_evaluating_its_condition_again(local, clock, ran):  # noqa: F811
    run_id, first = completed_run(local, clock, ran, COUNT)
    assert first["tasks"]["count_up"]["output"] == [{"count": 1}, {"count": 2}, {"count": 3}]
    local.engine.rewind_run(run_id, "step")  # count is 3: evaluated again, the loop would end at once
    done = drive(local, run_id, clock)
    assert done["tasks"]["count_up"]["output"] == [{"count": 1}, {"count": 2}, {"count": 4}] and ran == ["step.2"]
    # To its first iteration: the condition is evaluated after it, on count as it stands (5): the loop ends.
    local.engine.rewind_run(run_id, "step", iteration=0)
    again = drive(local, run_id, clock)
    assert again["tasks"]["count_up"]["output"] == [{"count": 5}] and ran[1:] == ["step.0"]
    assert again["redrives"] == 2 and again["status"] == "COMPLETED"


def test_a_failed_run_is_rewound_to_the_body_task_that_failed_in_its_iteration(local, clock, ran):  # noqa: F811
    run_id, failed = failed_run(local, clock, ran, SAGA_LOOP, "score.1")  # score failed in iteration 1: repaired
    assert failed["tasks"]["each"]["status"] == "FAILED"
    assert local.engine.rewind_run(run_id, "score")["iteration"] == 1  # the last that ran
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["score.1", "save.1", "fetch.2", "score.2", "save.2", "ship"]  # begin, fetch.1 and iteration 0 kept
    assert done["tasks"]["each"]["output"] == [11, 21, 31] and done["tasks"]["ship"]["output"] == 3


def test_the_rewind_is_in_the_runs_history(local, clock, ran):  # noqa: F811
    run_id, _ = completed_run(local, clock, ran, EACH)
    local.engine.rewind_run(run_id, "add", iteration=1, by="alice", reason="wrong total")
    drive(local, run_id, clock)
    entries = local.history.of_run(run_id, limit=500).items
    runs = [(e.status, e.previous, e.reason) for e in entries if e.kind == "run"]
    assert ("RUNNING", "COMPLETED", "rewind 1 to 'add' in iteration 1 by alice (wrong total): 0 tasks kept") in runs
    resets = {e.item for e in entries if e.reason == "reset by rewind 1 to 'add' in iteration 1"}
    assert {"each", "each.1", "add@each.1", "each.2", "square@each.2", "add@each.2", "after"} <= resets
    kept = {e.item for e in entries if e.reason == "kept by rewind 1 to 'add' in iteration 1, stamped with it"}
    assert kept == {"square@each.1"}
    assert any(e.reason == "reopened at iteration 1 by a rewind" and e.item == "each" for e in entries)


def test_refusals_say_why_and_change_nothing(local, clock, ran):  # noqa: F811
    run_id, _ = completed_run(local, clock, ran, EACH)
    for task, iteration, code, words in [
            ("add", 3, 409, "in iteration 3 of the loop 'each', 'add' is PENDING"),
            ("after", 0, 400, "'iteration' is for a task that runs in one")]:
        refused = local.engine.rewind_run(run_id, task, iteration=iteration)
        assert (refused["changed"], refused["code"]) == (False, code) and words in refused["reason"], refused
    # (A moving run's loop mid-iteration: tests/unit/test_engine_rewind_loop_moving.py.)
    assert local.engine.describe_run(run_id)["redrives"] == 0


def test_a_body_task_that_never_ran_in_any_iteration_is_refused(local, clock, ran):  # noqa: F811
    run_id, _ = completed_run(local, clock, ran, FOR_EACH % {"extra": ""}, {"items": []})
    refused = local.engine.rewind_run(run_id, "add")
    assert refused["code"] == 409 and "no iteration of the loop 'each' ran" in refused["reason"]


def test_with_compensate_the_flow_after_the_loop_is_compensated_first(local, clock, ran):  # noqa: F811
    run_id, first = completed_run(local, clock, ran, SAGA_LOOP)
    asked = local.engine.rewind_run(run_id, "score", iteration=1, compensate=True)
    assert asked["compensating"] == ["ship"] and asked["discarded"] == ["ship", "save@each.1", "score@each.1"]
    done = drive(local, run_id, clock)
    assert ran == ["unship", "score.1", "save.1", "fetch.2", "score.2", "save.2", "ship"]
    assert done["status"] == "COMPLETED" and done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


def test_asked_twice_with_every_message_delivered_twice_it_rewinds_once(local, clock, ran):  # noqa: F811
    run_id, first = completed_run(local, clock, ran, SAGA_LOOP)
    assert local.engine.rewind_run(run_id, "save", iteration=0)["rewind"] == 1
    assert local.engine.rewind_run(run_id, "fetch")["rewind"] == 1  # dropped: the first began
    deliver_twice(local)
    done = local.engine.describe_run(run_id)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert sorted(ran) == sorted(["save.0", "fetch.1", "score.1", "save.1", "fetch.2", "score.2", "save.2", "ship"])
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


@pytest.mark.parametrize("where", ["begin_rewind", "reset_task", "reopen_run", "resolve_edge"])
def test_a_crash_anywhere_in_the_rewind_is_healed_by_its_redelivery(local, clock, ran, monkeypatch,  # noqa: F811
                                                                    where):
    run_id, first = completed_run(local, clock, ran, SAGA_LOOP)
    local.engine.rewind_run(run_id, "save", iteration=2)
    killed_then_redelivered(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and ran == ["save.2", "ship"]
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]


def test_a_crash_while_the_loop_reopens_is_healed_by_its_redelivery(local, clock, ran, monkeypatch):  # noqa: F811
    """The worker that carries the rewind on to the loop dies right after the loop waits again, before its
    iteration started; the rewind's message comes back."""
    run_id, first = completed_run(local, clock, ran, SAGA_LOOP)
    local.engine.rewind_run(run_id, "score", iteration=1)
    real = local.store.change_task

    class Killed(BaseException):
        pass

    def dies_after_the_wait(run, key, change, *args, **kwargs):
        stored = real(run, key, change, *args, **kwargs)
        if key == "each" and change.status == "WAITING":
            monkeypatch.setattr(local.store, "change_task", real)
            raise Killed(key)
        return stored

    monkeypatch.setattr(local.store, "change_task", dies_after_the_wait)
    message = local.queue.receive()
    assert message["k"] == "rewind"
    with pytest.raises(Killed):
        local.engine.handle(message)
    assert local.store.list_tasks(run_id)["each.1"].status == "PENDING"  # not started
    local.engine.handle(message)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and ran == ["score.1", "save.1", "fetch.2", "score.2", "save.2", "ship"]
    assert done["tasks"]["each"]["output"] == first["tasks"]["each"]["output"]
