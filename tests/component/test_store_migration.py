"""The StateStore's migration writes (infra/engine/migration.py), identical on every store (memory, memory with
recall, SQLite, DynamoDB on moto, with claims)."""

from __future__ import annotations

from dataclasses import replace

from infra.ports import TaskChange, TaskRecord
from tests.component.test_store_contract import make_run, store, task_state  # noqa: F401 - the fixture

NEW = "hash-2"


def paused_run(store, run_id: str = "run-1") -> None:  # noqa: F811 - the fixture's name
    store.create_run(make_run(run_id, sinks_remaining=2))
    assert store.set_run_status(run_id, "PAUSED", expected="RUNNING")


def test_migrate_task_writes_once_while_the_run_is_paused_on_the_old_plan_and_the_item_is_as_found(store) -> None:  # noqa: F811,E501
    store.create_run(make_run())
    waiting = store.change_task("run-1", "b", TaskChange(status="WAITING", from_status=(None,), set={
        "attempt": 1, "waiting_for": "approval", "nonce": "n", "output": {"big": "x" * 50}}))
    kept = replace(waiting, redrive=1, links_epoch=0)
    assert store.migrate_task("run-1", kept, 1, "hash-1", waiting) is False  # the run is RUNNING
    assert store.set_run_status("run-1", "PAUSED", expected="RUNNING")
    assert store.migrate_task("run-1", kept, 1, "other-plan", waiting) is False  # another plan
    assert store.migrate_task("run-1", kept, 2, "hash-1", waiting) is False  # not the epoch after the run's
    moved = replace(waiting, status="COMPLETED")
    assert store.migrate_task("run-1", kept, 1, "hash-1", moved) is False  # not as it was found
    assert store.migrate_task("run-1", kept, 1, "hash-1", None) is False  # it has an item
    assert store.migrate_task("run-1", kept, 1, "hash-1", waiting) is True
    assert task_state(store, "run-1", "b") == kept
    assert store.migrate_task("run-1", kept, 1, "hash-1", waiting) is False  # stamped already
    # An item that does not exist is written only as such.
    assert store.migrate_task("run-1", TaskRecord("new", redrive=1), 1, "hash-1", waiting) is False
    assert store.migrate_task("run-1", TaskRecord("new", redrive=1), 1, "hash-1", None) is True
    assert task_state(store, "run-1", "new") == TaskRecord("new", redrive=1)


def test_migrate_task_matches_an_item_written_only_by_its_edges(store) -> None:  # noqa: F811
    """An item whose status, attempt and votes were never set (an edge counted) is PENDING, attempt 0, 0 votes."""
    paused_run(store)
    store.resolve_edge("run-1", "c", "a", "ok")
    found = task_state(store, "run-1", "c")
    assert store.migrate_task("run-1", TaskRecord("c", redrive=1), 1, "hash-1", found) is True
    assert task_state(store, "run-1", "c") == TaskRecord("c", redrive=1)  # the counted edge is gone with it


def test_switch_plan_once_moves_the_paused_run_to_the_new_plan(store) -> None:  # noqa: F811
    paused_run(store)
    before = store.get_run("run-1")
    inputs = {**before.inputs, "currency": "EUR"}
    applied, run = store.switch_plan("run-1", 1, "hash-1", NEW, inputs, {"counter": 0, "added": "x"}, ["a"], 1)
    assert applied is True and run == store.get_run("run-1")
    assert (run.status, run.plan_hash, run.redrives, run.sinks_remaining, run.variables, run.inputs) == (
        "RUNNING", NEW, 1, 1, {"counter": 0, "added": "x"}, inputs)
    assert run.created_at == before.created_at
    # The sinks it was given are counted: counting one again changes nothing, another one ends the count.
    assert store.record_sink_done("run-1", "a").sinks_remaining == 1
    assert store.record_sink_done("run-1", "d").sinks_remaining == 0
    again = store.switch_plan("run-1", 1, "hash-1", NEW, {}, {}, [], 5)
    assert again.applied is False and again.record == store.get_run("run-1")


def test_switch_plan_refuses_a_run_not_paused_on_the_plan_at_the_epoch_before(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.switch_plan("run-1", 1, "hash-1", NEW, {}, {}, [], 1).applied is False  # RUNNING
    store.set_run_status("run-1", "PAUSED", expected="RUNNING")
    assert store.switch_plan("run-1", 1, "other", NEW, {}, {}, [], 1).applied is False
    assert store.switch_plan("run-1", 2, "hash-1", NEW, {}, {}, [], 1).applied is False
    assert store.get_run("run-1").plan_hash == "hash-1"
    assert store.switch_plan("run-1", 1, "hash-1", NEW, {}, {}, [], 0).applied is True
    assert store.get_run("run-1").sinks_remaining == 0


def test_pause_to_migrate_pauses_only_a_running_run_on_the_plan_at_the_epoch_before(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.pause_to_migrate("run-1", 1, "other-plan").applied is False
    assert store.pause_to_migrate("run-1", 2, "hash-1").applied is False
    applied, run = store.pause_to_migrate("run-1", 1, "hash-1")
    assert applied is True and run == store.get_run("run-1") and run.status == "PAUSED"
    again = store.pause_to_migrate("run-1", 1, "hash-1")  # paused already: as it is
    assert again.applied is False and again.record.status == "PAUSED"
    assert store.switch_plan("run-1", 1, "hash-1", NEW, {}, {}, [], 1).applied is True
    # A late copy of the migration's message cannot pause the run it moved: it is at the next epoch.
    assert store.pause_to_migrate("run-1", 1, "hash-1").applied is False
    assert store.get_run("run-1").status == "RUNNING"
