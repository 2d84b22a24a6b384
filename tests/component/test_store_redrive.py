"""The StateStore's redrive operations, identical on both adapters (memory, DynamoDB on moto, with claims)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.ports import RunGone, TaskChange, TokenRecord
from tests.component.test_store_contract import make_run, store, task_state  # noqa: F401 - the fixture

NOW = "2030-01-02T00:00:00.000Z"


def failed_run(store, run_id: str = "run-1", sinks: int = 2) -> None:  # noqa: F811 - the fixture's name
    store.create_run(make_run(run_id, sinks_remaining=sinks))
    store.record_failure(run_id, "b", {"type": "Broken", "message": "task 'b': no"})
    store.record_sink_done(run_id, "a")
    store.record_sink_done(run_id, "c")
    store.begin_end(run_id, [], "RUNNING")
    assert store.finish_run(run_id, "FAILED", None, {"type": "Broken", "message": "no"}, "2030-01-01T01:00:00.000Z")


def test_reset_task_replaces_the_item_only_while_the_run_is_failed_at_the_epoch_before(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.change_task("run-1", "b", TaskChange(status="RUNNING", from_status=(None,), set={
        "attempt": 2, "output": {"big": "x" * 50}, "role_ctx": {"role": "handler"}, "started_at": "t0"}))
    store.resolve_edge("run-1", "b", "a", "ok")
    assert store.reset_task("run-1", "b", 1) is False  # the run is RUNNING: nothing is reset
    store.finish_run("run-1", "FAILED", None, None, NOW)
    assert store.reset_task("run-1", "b", 1, {"loop_state": {"total": 3}}) is True
    rec = task_state(store, "run-1", "b")
    assert (rec.status, rec.redrive, rec.attempt, rec.output, rec.role_ctx, rec.started_at, rec.resolved,
            rec.deps_ok, rec.loop_state) == ("PENDING", 1, 0, None, None, None, frozenset(), 0, {"total": 3})
    assert store.reset_task("run-1", "b", 1) is False  # stamped already
    assert task_state(store, "run-1", "b").loop_state == {"total": 3}
    assert store.reset_task("run-1", "absent", 1) is True  # an item that did not exist gets its stamp
    assert (task_state(store, "run-1", "absent").status, task_state(store, "run-1", "absent").redrive) == (
        "PENDING", 1)
    assert store.reset_task("run-1", "c", 2) is False  # the run has 0 redrives: only epoch 1 resets
    with pytest.raises(RunGone):
        store.reset_task("run-missing", "b", 1)
    assert task_state(store, "run-missing", "b") is None
    # Later writes keep the stamp.
    store.change_task("run-1", "b", TaskChange(status="RUNNING", from_status=(None,), set={"attempt": 1}))
    store.resolve_edge("run-1", "b", "a", "ok")
    assert task_state(store, "run-1", "b").redrive == 1


def test_reopen_run_once_clears_the_failure_and_sets_the_sink_counter(store) -> None:  # noqa: F811
    failed_run(store)
    before = store.get_run("run-1")
    assert (before.status, before.failed_tasks, before.end_comps, before.redrives) == (
        "FAILED", frozenset({"b"}), [], 0)
    applied, run = store.reopen_run("run-1", 1, ["a"], 1, NOW)
    assert applied is True and run == store.get_run("run-1")
    assert (run.status, run.redrives, run.redriven_at, run.sinks_remaining, run.failed_tasks, run.error,
            run.end_comps, run.ended_at, run.outputs, run.halt) == (
        "RUNNING", 1, NOW, 1, frozenset(), None, None, None, None, False)
    assert run.inputs == before.inputs and run.variables == before.variables
    assert store.record_sink_done("run-1", "a").sinks_remaining == 1  # a kept sink stays counted
    assert store.record_sink_done("run-1", "c").sinks_remaining == 0  # a reset one counts again
    applied, again = store.reopen_run("run-1", 1, ["a"], 1, NOW)  # a duplicate: refused, sees the run
    assert applied is False and again.redrives == 1 and again.status == "RUNNING"
    assert store.begin_end("run-1", [], "RUNNING").end_comps == []  # the end steps can be fixed again
    assert store.finish_run("run-1", "FAILED", None, {"type": "E", "message": "again"}, NOW)
    assert store.reopen_run("run-1", 1, [], 2, NOW)[0] is False  # epoch 1 is done
    applied, run = store.reopen_run("run-1", 2, [], 2, NOW)
    assert applied and run.redrives == 2 and run.sinks_remaining == 2
    assert store.record_sink_done("run-1", "a").sinks_remaining == 1  # no kept sink: every sink counts


def test_reopen_run_refuses_a_run_that_is_not_failed_or_whose_compensation_ran(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.reopen_run("run-1", 1, [], 2, NOW) == (False, store.get_run("run-1"))
    store.create_run(make_run("run-2"))
    store.record_failure("run-2", "b", {"type": "E", "message": "m"})
    store.begin_end("run-2", [["undo_a", "a"]], "COMPENSATING")
    store.finish_run("run-2", "FAILED", None, None, NOW)
    applied, run = store.reopen_run("run-2", 1, [], 2, NOW)
    assert applied is False and run.status == "FAILED" and run.end_comps == [["undo_a", "a"]]
    assert store.reset_task("run-2", "b", 1) is True  # (the engine refuses such a run before resetting)
    with pytest.raises(RunGone):
        store.reopen_run("run-missing", 1, [], 1, NOW)
    assert store.get_run("run-missing") is None


def test_a_token_keeps_its_epoch(store) -> None:  # noqa: F811
    token = TokenRecord("tok-9", "run-1", "t", 1, "callback", "hash-1", None, epoch=2)
    store.put_token(token)
    assert store.get_token("tok-9") == token
    store.put_token(replace(token, token_hash="tok-10", epoch=0))
    assert store.get_token("tok-10").epoch == 0
