"""Rewind of a run still moving (issue #13 item 4: a run is reopened "finished or not"), in memory and on SQLite.

Code tasks run in the task runner: a task whose result has not come back yet is mid-attempt, and the test
holds that result back to hand it in after the rewind, as a late one.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from infra.engine import LinkError
from infra.ports import LostRace, TaskChange
from infra.tasks import outbox
from tests.unit.test_engine_approvals import board, links
from tests.unit.test_engine_redrive import CHAIN, FAN, breakable
from tests.unit.test_engine_rewind import local  # noqa: F401  (the fixture: memory and SQLite)
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, start


@pytest.fixture
def ran(monkeypatch):
    return breakable(monkeypatch)


@pytest.fixture(autouse=True)
def each_message_by_hand(local):  # noqa: F811
    """Every ready task through the queue (none carried on), so the test can stop between any two steps."""
    local.engine.carry_on.limit = 0
    outbox.clear()


def held(local, task_id: str) -> str:  # noqa: F811
    """Handle messages and results one at a time until ``task_id``'s result comes back from the task runner;
    returns it unhandled: the task is mid-attempt, its result on its way."""
    return held_all(local, task_id)[task_id]


def held_all(local, *task_ids: str) -> dict[str, str]:  # noqa: F811
    """:func:`held` for each of ``task_ids``: their results, once all have come back."""
    bodies: dict[str, str] = {}
    for _ in range(500):
        if len(bodies) == len(task_ids):
            return bodies
        body = local.results.receive_body()
        if body is not None:
            task_id = json.loads(body)["requestPayload"]["attempt"]["task"]
            if task_id in task_ids:
                bodies[task_id] = body
            else:
                local.engine.accept_result(body)
            continue
        message = local.queue.receive()
        assert message is not None, f"nothing left to do, and no result of {set(task_ids) - set(bodies)}"
        local.engine.handle(message)
    raise AssertionError(f"no result of {task_ids}")


def rewound(local, run_id: str, task_id: str, **kwargs) -> dict:  # noqa: F811
    """Ask for the rewind, then hand the worker its message (the next one queued: the test's steps are in order)."""
    asked = local.engine.rewind_run(run_id, task_id, **kwargs)
    assert asked["changed"] is True, asked
    message = local.queue.receive()
    while message["k"] != "rewind":  # what was queued before it is handled first, as the queue would
        local.engine.handle(message)
        message = local.queue.receive()
    local.engine.handle(message)
    return asked


def item(local, run_id, key):  # noqa: F811
    return local.store.list_tasks(run_id)[key]


def test_a_running_run_rewound_while_a_discarded_task_is_mid_attempt_drops_its_late_result(local, clock, ran):  # noqa: F811
    run_id = start(local, CHAIN)
    late = held(local, "c")  # c is RUNNING: its code ran, its result is on its way back
    assert item(local, run_id, "c").status == "RUNNING"
    asked = rewound(local, run_id, "b", by="ops", reason="b read stale data")
    assert (asked["status"], asked["discarded"]) == ("RUNNING", ["b", "c"])
    view = local.engine.describe_run(run_id)
    assert view["status"] == "RUNNING" and view["redrives"] == 1 and view["tasks"]["c"]["status"] == "PENDING"
    assert local.engine.accept_result(late).startswith("dropped")  # late, before c runs again
    again = held(local, "c")  # b ran again, and c is at its attempt 1 again, of the new epoch
    rec = item(local, run_id, "c")
    assert (rec.status, rec.attempt, rec.redrive) == ("RUNNING", 1, 1)
    assert local.engine.accept_result(late).startswith("dropped")  # late again, with c under the same attempt
    assert item(local, run_id, "c") == rec
    assert local.engine.accept_result(again) == "completed"
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
    assert ran == ["a", "b", "c", "b", "c", "log"] and done["tasks"]["c"]["attempts"] == 1
    history = [(e.status, e.previous, e.reason) for e in local.history.of_run(run_id, limit=500).items
               if e.kind == "run"]
    assert ("PAUSED", "RUNNING", "paused to rewind 1 to 'b' by ops (b read stale data)") in history
    assert ("RUNNING", "PAUSED", "rewind 1 to 'b' by ops (b read stale data): 1 tasks kept") in history


def test_a_task_mid_attempt_upstream_of_the_rewind_is_kept_and_its_result_counts(local, clock, ran):  # noqa: F811
    run_id = start(local, FAN)
    late = held_all(local, "left", "right")  # both mid-attempt
    local.engine.accept_result(late["right"])  # right completed: a checkpoint
    late_left = late["left"]
    asked = rewound(local, run_id, "right")
    assert asked["discarded"] == ["join", "right"]  # left is not downstream of right: kept as it stands
    assert item(local, run_id, "left").status == "RUNNING" and item(local, run_id, "left").redrive == 0
    assert local.engine.accept_result(late_left) == "completed"  # its result lands, and its edge counts
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"join": 23}
    assert sorted(ran[1:3]) == ["left", "right"] and ran[0] == "load" and ran[3:] == ["right", "join"]


def test_a_paused_run_is_rewound_and_runs_again_from_the_task(local, clock, ran):  # noqa: F811
    run_id = start(local, FAN)
    late = held_all(local, "left", "right")
    late_right = late["right"]
    local.engine.accept_result(late["left"])
    assert local.engine.pause_run(run_id)["changed"] is True
    settle(local, run_id)  # join is parked (right has not ended)
    rewound(local, run_id, "left")
    view = local.engine.describe_run(run_id)
    assert view["status"] == "RUNNING" and view["tasks"]["left"]["status"] == "PENDING"
    assert local.engine.accept_result(late_right) == "completed"  # right is kept: upstream of nothing discarded
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"join": 23}
    assert sorted(ran[1:3]) == ["left", "right"] and ran[3:] == ["left", "join"]


def test_while_the_rewind_holds_the_run_it_cannot_be_resumed_paused_or_rewound_again(local, clock, ran):  # noqa: F811
    run_id = start(local, CHAIN)
    late = held(local, "c")
    local.engine.rewind_run(run_id, "b")
    local.store.begin_rewind(run_id, 1, "b", moving=True)  # begun, then its worker died
    assert local.engine.describe_run(run_id)["status"] == "PAUSED"
    assert local.engine.resume_run(run_id)["changed"] is False
    assert "rewind to 'b' is under way" in local.engine.rewind_run(run_id, "a")["reason"]
    assert local.engine.accept_result(late) == "completed"  # c ends while held: its sink is taken back
    deliver_twice(local)  # the rewind's message comes back, then every message twice
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and done["outputs"] == {"c": 20}
    assert ran == ["a", "b", "c", "b", "c", "log"]


def test_a_late_edge_sink_or_failure_from_before_the_rewind_is_not_counted(local, clock, ran):  # noqa: F811
    """What a handler carries on with after a write that landed just before the rewind (an edge, a sink, a
    failure of a discarded task, stamped with the epoch before) does not count for the reset run."""
    run_id = start(local, CHAIN.replace("depends_on: [b]", "depends_on: [a, b]"))
    late = held(local, "c")
    rewound(local, run_id, "b")
    # a is kept; c's dependencies are counted by reading them (statemachine/joins.py): no edge on its item, and
    # a read from before the rewind finds b reset. The store's fence still holds an edge written late.
    assert item(local, run_id, "c").fenced == {"b"} and item(local, run_id, "c").resolved == frozenset()
    assert not local.store.resolve_edge(run_id, "c", "b", "ok", epoch=0).applied
    local.store.record_sink_done(run_id, "c", epoch=0)
    local.store.record_failure(run_id, "c", {"type": "Late"}, epoch=0)
    run = local.store.get_run(run_id)
    assert run.sinks_remaining == 1 and run.failed_tasks == frozenset() and run.fenced == {"b", "c"}
    assert local.engine.accept_result(late).startswith("dropped")
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and ran == ["a", "b", "c", "b", "c", "log"]


def test_a_write_decided_before_the_reset_fails_however_the_task_looks_now(local, clock, ran):  # noqa: F811
    run_id = start(local, CHAIN)
    held(local, "c")
    before = item(local, run_id, "c")
    rewound(local, run_id, "b")
    again = held(local, "c")
    assert item(local, run_id, "c").attempt == before.attempt  # the same attempt number, another epoch
    with pytest.raises(LostRace):
        local.store.change_task(run_id, "c", TaskChange("COMPLETED", ("RUNNING",), attempt=before.attempt,
                                                        epoch=before.redrive, set={"output": 666}))
    assert local.engine.accept_result(again) == "completed"


def test_a_run_waiting_on_an_approval_is_rewound_and_the_old_links_are_refused(local, clock, ran):  # noqa: F811
    text = board(quorum=1).replace("    - id: vote\n", "    - {id: pre, type: python, config: {code: 'result = 1'}}\n"
                                   "    - id: vote\n      depends_on: [pre]\n")
    run_id = start(local, text, {"name": "atlas"})
    assert settle_all(local, run_id)["tasks"]["vote"]["status"] == "WAITING"
    old = links(local, run_id)
    clock.advance(43200)  # half a day in
    rewound(local, run_id, "pre")
    view = settle_all(local, run_id)
    assert view["tasks"]["vote"]["status"] == "WAITING" and view["redrives"] == 1
    with pytest.raises(LinkError) as refused:  # the approval was discarded: its links are void
        local.engine.decide(old["ann@example.com"], "APPROVED")
    assert refused.value.status == 410
    clock.advance(43200 + 1)  # the old approval's timeout is due: its timer is stale, ignored
    view = settle_all(local, run_id)
    assert view["status"] == "RUNNING" and view["tasks"]["vote"]["status"] == "WAITING"
    local.engine.decide(links(local, run_id)["ann@example.com"], "APPROVED")
    done = settle_all(local, run_id)
    assert done["status"] == "COMPLETED" and done["tasks"]["next"]["output"] == "APPROVED"
    assert ran == ["pre", "pre", "next"]


def test_a_run_waiting_on_a_timer_is_rewound_and_the_old_timer_is_ignored(local, clock, ran):  # noqa: F811
    run_id = start(local, """
    workflow:
      metadata: {id: timed}
      tasks:
        - {id: a, type: python, config: {code: "result = 1"}}
        - {id: nap, type: wait, depends_on: [a], config: {duration: 1h}}
        - {id: after, type: python, depends_on: [nap], config: {code: "result = 2"}}
    """)
    view = settle_all(local, run_id)
    assert view["tasks"]["nap"]["status"] == "WAITING"
    clock.advance(1800)
    rewound(local, run_id, "a")  # half an hour in: the wait starts again, for a full hour
    view = settle_all(local, run_id)
    assert view["tasks"]["nap"]["status"] == "WAITING" and view["redrives"] == 1
    clock.advance(1800 + 1)  # the old timer is due: dropped as stale
    view = settle_all(local, run_id)
    assert view["tasks"]["nap"]["status"] == "WAITING" and ran == ["a", "a"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and ran == ["a", "a", "after"]


def settle_all(local, run_id):  # noqa: F811
    """What is due now, results included, without moving the clock."""
    while True:
        body = local.results.receive_body()
        if body is not None:
            local.engine.accept_result(body)
            continue
        message = local.queue.receive()
        if message is None:
            return local.engine.describe_run(run_id)
        local.engine.handle(message)


def test_refusals_of_a_moving_run_say_why(local, clock, ran):  # noqa: F811
    run_id = start(local, CHAIN)
    refused = local.engine.rewind_run(run_id, "a")  # nothing ended yet: no checkpoint
    assert refused["code"] == 409 and "'a' is PENDING" in refused["reason"]
    held(local, "b")  # (compensate: tests/unit/test_engine_rewind_undo.py)
    local.engine.cancel_run(run_id)
    refused = local.engine.rewind_run(run_id, "a")
    assert refused["code"] == 409 and "stopping" in refused["reason"], refused


def test_a_discarded_sub_workflow_task_has_its_child_run_cancelled_and_a_new_one_started(local, clock, ran):  # noqa: F811
    from tests.conftest import compile_yaml

    local.engine.register_workflow(compile_yaml("""
    workflow:
      metadata: {id: slow_child}
      tasks:
        - {id: hold, type: callback}
    """))
    run_id = start(local, """
    workflow:
      metadata: {id: waits_on_its_child}
      tasks:
        - {id: seed, type: python, config: {code: "result = 1"}}
      sub_workflows:
        - {id: kid, workflow_ref: slow_child, depends_on: [seed]}
    """)
    assert settle_all(local, run_id)["tasks"]["kid"]["status"] == "WAITING"
    old_child = item(local, run_id, "kid").child_run
    assert local.engine.describe_run(old_child)["status"] == "RUNNING"
    rewound(local, run_id, "seed")
    view = settle_all(local, run_id)
    new_child = item(local, run_id, "kid").child_run
    assert view["status"] == "RUNNING" and new_child != old_child and ran == ["seed", "seed"]
    assert local.engine.describe_run(old_child)["status"] == "CANCELLED"  # discarded with its task
    hold = settle_all(local, new_child)["callbacks"][0]["url"].rsplit("/", 1)[1]
    local.engine.submit_callback(hold, {"ok": True})
    assert settle_all(local, run_id)["status"] == "COMPLETED"


def test_a_parallel_block_running_when_rewound_drops_its_branches_late_results(local, clock, ran):  # noqa: F811
    from tests.unit.test_engine_parallel import block

    run_id = start(local, block("all", broken="result = 'fine'"))
    late = held_all(local, "d1", "t1")  # two branches mid-attempt (b1 may have ended)
    rewound(local, run_id, "load")  # the block and its members are discarded with load
    assert {item(local, run_id, key).status for key in ("fan", "d1", "t1", "t2")} == {"PENDING"}
    for body in late.values():
        assert local.engine.accept_result(body).startswith("dropped")
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["fan"]["output"] == [[2, 4, 6], 106, "fine"]
    assert sorted(ran) == sorted(["load", "d1", "t1", "b1", "load", "d1", "t1", "t2", "b1", "report"])


def test_a_run_a_migration_is_moving_is_not_rewound_until_it_is_done(local, clock, ran):  # noqa: F811
    run_id = start(local, CHAIN)
    late = held(local, "c")
    run = local.store.get_run(run_id)
    local.store.pause_to_migrate(run_id, 1, run.plan_hash)  # a migration paused it and wrote one item
    assert local.store.migrate_task(run_id, replace(item(local, run_id, "a"), redrive=1), 1, run.plan_hash,
                                    item(local, run_id, "a"))
    refused = local.engine.rewind_run(run_id, "b")
    assert refused["code"] == 409 and "migration to another version is under way" in refused["reason"]
    local.engine.handle({"k": "rewind", "run": run_id, "epoch": 1, "to": "b"})  # a forged or early copy: dropped
    assert local.store.get_run(run_id).rewinding is None
    assert local.engine.accept_result(late) == "completed"
