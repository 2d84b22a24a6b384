"""The StateStore's rewind operations, identical on every adapter (memory, SQLite, DynamoDB on moto)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.ports import LostRace, RunGone, TaskChange, TaskRecord
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


def test_a_rewind_writes_a_kept_item_again_stamped_with_its_epoch(store) -> None:  # noqa: F811
    """A rewind into a loop's body restamps the iteration's kept body items: ``keep`` says their status."""
    completed_run(store)
    store.begin_rewind("run-1", 1, "b@each.0")
    kept = {"status": "COMPLETED", "attempt": 1, "output": 2, "resolved": frozenset({"a"}), "deps_ok": 1}
    assert store.reset_task("run-1", "b@each.0", 1, kept, rewinding=True) is True
    rec = task_state(store, "run-1", "b@each.0")
    assert (rec.status, rec.redrive, rec.attempt, rec.output, rec.resolved, rec.deps_ok) == (
        "COMPLETED", 1, 1, 2, frozenset({"a"}), 1)


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


# ---------------------------------------------------------------- a moving run's rewind


def test_begin_rewind_of_a_moving_run_pauses_it_once_and_a_resume_waits(store) -> None:  # noqa: F811
    completed_run(store)
    assert store.begin_rewind("run-1", 1, "b", moving=True)[0] is False  # ended: not a moving rewind
    store.create_run(make_run("moving"))
    applied, run = store.begin_rewind("moving", 1, "b", moving=True)
    assert applied and (run.status, run.rewinding, run.rewind_to, run.redrives) == ("PAUSED", 1, "b", 0)
    assert run == store.get_run("moving")
    assert store.begin_rewind("moving", 1, "a", moving=True)[0] is False  # one rewind of the epoch
    assert store.set_run_status("moving", "RUNNING", expected="PAUSED") is False  # no resume while it holds
    store.create_run(make_run("paused", status="PAUSED"))
    assert store.begin_rewind("paused", 1, "b", moving=True)[0] is True
    store.create_run(make_run("stopping"))
    store.halt_run("stopping", "$cancel", {"type": "Cancelled", "message": "m"})
    assert store.begin_rewind("stopping", 1, "b", moving=True)[0] is False
    store.create_run(make_run("ending"))
    store.begin_end("ending", [], "RUNNING")
    assert store.begin_rewind("ending", 1, "b", moving=True)[0] is False


def test_reopen_moving_takes_the_discarded_tasks_out_and_fences_their_late_results(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.record_sink_done("run-1", "a")
    store.record_sink_done("run-1", "b")  # b ended, just before the rewind discarded it
    store.record_failure("run-1", "b", {"type": "E", "message": "m"})
    assert store.reopen_moving("run-1", 1, ["b"], 2, ["b"], NOW)[0] is False  # not begun
    store.begin_rewind("run-1", 1, "b", moving=True)
    assert store.reopen_moving("run-1", 2, ["b"], 2, ["b"], NOW)[0] is False  # not its epoch
    applied, run = store.reopen_moving("run-1", 1, ["b"], 2, ["b"], NOW)
    assert applied and (run.status, run.redrives, run.rewinding, run.sinks_remaining, run.failed_tasks, run.error,
                        run.fenced) == ("RUNNING", 1, None, 1, frozenset(), None, frozenset({"b"}))
    assert run == store.get_run("run-1")
    assert store.reopen_moving("run-1", 1, ["b"], 2, ["b"], NOW)[0] is False  # a duplicate
    assert store.reset_task("run-1", "b", 1, rewinding=True) is False  # reopened: no reset lands
    store.record_failure("run-1", "b", {"type": "Late", "message": "m"}, epoch=0)  # from before: not recorded
    assert store.record_sink_done("run-1", "b", epoch=0).sinks_remaining == 1  # from before: not counted
    assert store.record_sink_done("run-1", "a", epoch=0).sinks_remaining == 1  # kept: counted already
    assert store.get_run("run-1").failed_tasks == frozenset()
    store.record_failure("run-1", "b", {"type": "E", "message": "m"}, epoch=1)
    assert store.record_sink_done("run-1", "b", epoch=1).sinks_remaining == 0
    assert store.get_run("run-1").failed_tasks == frozenset({"b"})


def test_a_fenced_item_refuses_edges_and_writes_from_before_its_epoch(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.begin_rewind("run-1", 1, "b", moving=True)
    assert store.reset_task("run-1", "c", 1, {"fenced": frozenset({"b"})}, rewinding=True)
    assert task_state(store, "run-1", "c").fenced == frozenset({"b"})
    assert store.resolve_edge("run-1", "c", "b", "ok", epoch=0).applied is False  # b's result from before
    assert store.resolve_edge("run-1", "c", "a", "ok", epoch=0).applied is True  # a is kept: it counts
    store.reopen_moving("run-1", 1, ["b", "c"], 2, ["b", "c"], NOW)
    written = store.resolve_edge("run-1", "c", "b", "ok", epoch=1)  # b ended again, in the new epoch
    assert written.applied and written.record.resolved == {"a", "b"} and written.record.deps_ok == 2
    store.change_task("run-1", "c", TaskChange("RUNNING", (None,), set={"attempt": 1}))
    late = TaskChange("COMPLETED", ("RUNNING",), attempt=1, epoch=0, set={"output": 666})  # attempt 1 of before
    with pytest.raises(LostRace):
        store.change_task("run-1", "c", late)
    assert store.change_task("run-1", "c", replace(late, epoch=1)).output == 666


def test_a_migration_cannot_move_a_run_a_rewind_holds(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.begin_rewind("run-1", 1, "b", moving=True)
    assert store.pause_to_migrate("run-1", 1, "hash-1")[0] is False
    assert store.migrate_task("run-1", TaskRecord("a", redrive=1), 1, "hash-1", None) is False
    assert store.switch_plan("run-1", 1, "hash-1", "hash-2", {}, {}, [], 1)[0] is False


def test_a_moving_runs_rewind_with_compensations_holds_it_paused_with_them_then_clears_them(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.record_sink_done("run-1", "b")
    applied, run = store.begin_rewind("run-1", 1, "b", [["undo_b", "b"]], moving=True)
    assert applied and (run.status, run.rewinding, run.end_comps) == ("PAUSED", 1, [["undo_b", "b"]])
    assert run == store.get_run("run-1")
    assert store.begin_rewind("run-1", 1, "b", [["undo_b", "b"]], moving=True)[0] is False  # a duplicate
    assert store.set_run_status("run-1", "RUNNING", expected="PAUSED") is False  # no resume while it holds
    applied, run = store.reopen_moving("run-1", 1, ["b"], 2, ["b"], NOW)
    assert applied and (run.status, run.rewinding, run.end_comps, run.sinks_remaining) == ("RUNNING", None, None, 2)
    assert run == store.get_run("run-1")
    # Its end steps are gone: the run's own end fixes them again when its flow is over.
    assert store.begin_end("run-1", [], "RUNNING").end_comps == []
