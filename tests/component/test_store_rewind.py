"""The StateStore's rewind operations, identical on every adapter (memory, SQLite, DynamoDB on moto)."""

from __future__ import annotations

import pytest

from infra.ports import RunGone, TaskChange
from tests.component.test_store_contract import make_run, store, task_state  # noqa: F401 - the fixture
from tests.component.test_store_redrive import NOW, failed_run


def completed_run(store, run_id: str = "run-1") -> None:  # noqa: F811 - the fixture's name
    store.create_run(make_run(run_id))
    store.change_task(run_id, "b", TaskChange(status="COMPLETED", from_status=(None,), set={"attempt": 1,
                                                                                         "output": 2}))
    store.record_sink_done(run_id, "a")
    store.record_sink_done(run_id, "b")
    assert store.finish_run(run_id, "COMPLETED", {"out": 2}, None, "2030-01-01T01:00:00.000Z", expires=1900000000)


def test_begin_rewind_marks_an_ended_run_at_the_epoch_before_once(store) -> None:  # noqa: F811
    store.create_run(make_run("moving"))
    applied, run = store.begin_rewind("moving", 1, "b")
    assert applied is False and run.status == "RUNNING" and run.rewinding is None  # not ended: refused
    completed_run(store)
    assert store.begin_rewind("run-1", 2, "b")[0] is False  # the run has 0 redrives: only epoch 1
    applied, run = store.begin_rewind("run-1", 1, "b")
    assert applied and (run.status, run.rewinding, run.rewind_to, run.redrives) == ("COMPLETED", 1, "b", 0)
    assert run == store.get_run("run-1")
    applied, run = store.begin_rewind("run-1", 1, "a")  # another rewind of the epoch: it finds the first
    assert applied is False and (run.rewinding, run.rewind_to) == (1, "b")
    with pytest.raises(RunGone):
        store.begin_rewind("run-missing", 1, "b")


def test_a_rewind_resets_and_reopens_only_while_its_epoch_is_under_way(store) -> None:  # noqa: F811
    completed_run(store)
    assert store.reset_task("run-1", "b", 1, rewinding=True) is False  # not begun
    store.begin_rewind("run-1", 1, "b")
    assert store.reset_task("run-1", "b", 1, {"loop_state": {"total": 2}}, rewinding=True) is True
    assert store.reset_task("run-1", "b", 1, rewinding=True) is True  # again: the same PENDING item
    rec = task_state(store, "run-1", "b")
    assert (rec.status, rec.redrive, rec.output, rec.loop_state) == ("PENDING", 1, None, None)
    assert store.reopen_run("run-1", 2, ["a"], 1, NOW, rewinding=True)[0] is False  # not its epoch
    applied, run = store.reopen_run("run-1", 1, ["a"], 1, NOW, rewinding=True)
    assert applied and (run.status, run.redrives, run.rewinding, run.rewind_to, run.outputs, run.ended_at,
                        run.ttl, run.sinks_remaining) == ("RUNNING", 1, None, None, None, None, None, 1)
    assert run == store.get_run("run-1")
    assert store.reset_task("run-1", "b", 1, rewinding=True) is False  # reopened: no reset lands
    assert store.reopen_run("run-1", 1, ["a"], 1, NOW, rewinding=True)[0] is False  # a duplicate
    assert store.record_sink_done("run-1", "a").sinks_remaining == 1  # a kept sink stays counted
    assert store.record_sink_done("run-1", "b").sinks_remaining == 0


def test_a_redrive_can_neither_reset_nor_reopen_while_a_rewind_is_under_way(store) -> None:  # noqa: F811
    failed_run(store)
    assert store.reset_task("run-1", "x", 1) is True  # a redrive of epoch 1 began first
    store.begin_rewind("run-1", 1, "a")
    assert store.reset_task("run-1", "b", 1) is False
    assert store.reopen_run("run-1", 1, [], 2, NOW)[0] is False
    assert store.reset_task("run-1", "x", 1, rewinding=True) is True  # the rewind overwrites the redrive's
    applied, run = store.reopen_run("run-1", 1, [], 2, NOW, rewinding=True)
    assert applied and run.status == "RUNNING" and run.failed_tasks == frozenset()


def test_a_run_whose_compensation_ran_reopens_by_a_rewind(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.record_failure("run-1", "b", {"type": "E", "message": "m"})
    store.begin_end("run-1", [["undo_a", "a"]], "COMPENSATING")
    store.finish_run("run-1", "FAILED", None, None, NOW)
    store.begin_rewind("run-1", 1, "a")
    applied, run = store.reopen_run("run-1", 1, [], 2, NOW, rewinding=True)
    assert applied and run.end_comps is None and run.status == "RUNNING"


def test_begin_rewind_with_compensations_makes_the_run_compensate_them_first(store) -> None:  # noqa: F811
    from statemachine.state import LastChange

    completed_run(store)
    note = LastChange(reason="rewind 1 to 'b': compensating 1 tasks first", at=NOW, cause_kind="", cause_name="",
                      cause_subject="")
    applied, run = store.begin_rewind("run-1", 1, "b", [["undo_b", "b"]], note=note)
    assert applied and (run.status, run.end_comps, run.rewinding, run.last_change) == (
        "COMPENSATING", [["undo_b", "b"]], 1, note)
    assert run == store.get_run("run-1")
    assert store.begin_rewind("run-1", 1, "b", [["undo_b", "b"]])[0] is False  # begun: not again
    store.reset_task("run-1", "b", 1, rewinding=True)
    applied, run = store.reopen_run("run-1", 1, [], 2, NOW, rewinding=True)
    assert applied and (run.status, run.end_comps, run.rewinding) == ("RUNNING", None, None)
