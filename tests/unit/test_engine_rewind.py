"""Rewind (issue #13 item 4): an ended run reopens from just before one of its tasks, in memory and on SQLite."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from loopline.memory.local_mode import LocalMode
from statemachine.messages import Exec, encode
from tests.unit.test_engine_errors import SAGA
from tests.unit.test_engine_redrive import CHAIN, FAN, breakable, failed_run, killed_then_redelivered
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, start, statuses


@pytest.fixture(params=["memory", "sqlite"])
def local(clock, request, tmp_path):
    """Local mode in memory, or on a SQLite state file."""
    mode = LocalMode(clock=clock, inline_code=True, state=tmp_path / "state" if request.param == "sqlite" else None)
    yield mode
    mode.close()


@pytest.fixture
def ran(monkeypatch):
    return breakable(monkeypatch)


def completed_run(local, clock, ran, text, inputs=None):
    run_id = start(local, text, inputs)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED", view
    ran.clear()
    clock.advance(60)
    return run_id, view


def test_a_completed_run_rewound_to_a_task_runs_it_and_what_follows_again(local, clock, ran):
    run_id, first = completed_run(local, clock, ran, CHAIN)
    kept = local.store.list_tasks(run_id)["a"]
    asked = local.engine.rewind_run(run_id, "b", by="ops", reason="b read stale data")
    assert asked == {"run_id": run_id, "status": "COMPLETED", "changed": True, "rewind": 1, "to": "b",
                     "discarded": ["b", "c"], "compensating": []}
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
    assert ran == ["b", "c", "log"]  # a is kept; the finally task runs again at the new end
    after = local.store.list_tasks(run_id)["a"]
    assert (after.output, after.ended_at, after.redrive) == (kept.output, kept.ended_at, 0)
    assert done["tasks"]["b"]["attempts"] == 1 and done["ended_at"] > first["ended_at"]
    # Rewound again (a later epoch), to its first task this time: everything runs again.
    assert local.engine.rewind_run(run_id, "a")["rewind"] == 2
    assert drive(local, run_id, clock)["status"] == "COMPLETED" and ran[3:] == ["a", "b", "c", "log"]


def test_the_rewind_is_in_the_runs_history_with_who_and_why(local, clock, ran):
    run_id, _ = completed_run(local, clock, ran, CHAIN)
    local.engine.rewind_run(run_id, "c", by="alice", reason="c's output was wrong")
    drive(local, run_id, clock)
    runs = [(e.status, e.previous, e.reason) for e in local.history.of_run(run_id, limit=500).items
            if e.kind == "run"]
    assert ("RUNNING", "COMPLETED", "rewind 1 to 'c' by alice (c's output was wrong): 2 tasks kept") in runs
    resets = [e for e in local.history.of_run(run_id, limit=500).items if e.reason == "reset by rewind 1 to 'c'"]
    assert {e.item for e in resets} == {"c", "log"} and {e.status for e in resets} == {"PENDING"}


def test_only_the_branch_downstream_of_the_task_runs_again(local, clock, ran):
    run_id, first = completed_run(local, clock, ran, FAN)
    assert local.engine.rewind_run(run_id, "right")["discarded"] == ["join", "right"]
    done = drive(local, run_id, clock)
    assert done["outputs"] == first["outputs"] and ran == ["right", "join"]


def test_refusals_say_why_and_change_nothing(local, clock, ran):
    run_id = start(local, CHAIN)
    assert local.engine.rewind_run("nope", "a") is None
    refused = local.engine.rewind_run(run_id, "a")  # RUNNING, and a has not run yet (test_engine_rewind_moving.py)
    assert (refused["changed"], refused["code"]) == (False, 409) and "'a' is PENDING" in refused["reason"]
    drive(local, run_id, clock)
    for task, code, words in [("zzz", 404, "no task 'zzz'"), ("log", 400, "finally task")]:
        refused = local.engine.rewind_run(run_id, task)
        assert (refused["changed"], refused["code"]) == (False, code) and words in refused["reason"], refused
    failed_id, _ = failed_run(local, clock, ran, CHAIN, "b")
    refused = local.engine.rewind_run(failed_id, "c")  # cancelled when b failed: it never ran
    assert refused["code"] == 409 and "'c' is CANCELLED: only a task that ran to its end" in refused["reason"]
    local.engine.handle({"k": "rewind", "run": run_id, "epoch": 1, "to": "zzz"})  # a forged message: dropped
    local.engine.handle({"k": "rewind", "run": run_id, "epoch": 5, "to": "a"})  # not the next epoch
    assert local.engine.describe_run(run_id)["status"] == "COMPLETED" and ran == []


def test_a_failed_run_rewound_before_its_failure_runs_the_failed_task_again(local, clock, ran):
    run_id, failed = failed_run(local, clock, ran, CHAIN, "b")
    assert statuses(failed)["b"] == "FAILED"
    local.engine.rewind_run(run_id, "a")
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and ran == ["a", "b", "c", "log"]


def test_a_saga_whose_compensation_ran_is_rewound_only_to_or_before_a_compensated_task(local, clock, ran):
    run_id = start(local, SAGA)
    failed = drive(local, run_id, clock)
    assert failed["status"] == "FAILED" and failed["tasks"]["cancel_hotel"]["status"] == "COMPLETED"
    refused = local.engine.rewind_run(run_id, "car")
    assert refused["code"] == 409 and "undid flight, hotel" in refused["reason"]
    assert local.engine.rewind_run(run_id, "flight")["changed"] is True
    ran.clear()
    again = drive(local, run_id, clock)  # car fails again (its code raises): compensated again
    assert again["status"] == "FAILED" and ran == ["flight", "hotel", "car", "cancel_hotel", "cancel_flight", "log"]


def test_a_parallel_member_rewinds_its_whole_block(local, clock, ran):
    from tests.unit.test_engine_parallel import block

    run_id, first = completed_run(local, clock, ran, block("all", broken="result = 'b'"))
    asked = local.engine.rewind_run(run_id, "t2")
    assert asked["to"] == "fan" and asked["discarded"] == ["b1", "d1", "fan", "report", "t1", "t2"]
    done = drive(local, run_id, clock)
    assert done["tasks"]["fan"]["output"] == first["tasks"]["fan"]["output"]
    assert sorted(ran) == ["b1", "d1", "report", "t1", "t2"]  # load is kept


def test_a_for_each_loop_runs_all_its_iterations_again(local, clock, ran):
    """(A rewind to a task of its body reopens one iteration: test_engine_rewind_loop.py.)"""
    from tests.unit.test_engine_loops import FOR_EACH

    run_id, first = completed_run(local, clock, ran, FOR_EACH % {"extra": ""})
    local.engine.rewind_run(run_id, "each")
    done = drive(local, run_id, clock)
    # The variables are not rewound: the running total the loop exports goes on from where it was.
    totals = [o["total"] for o in first["tasks"]["each"]["output"]]
    assert [o["total"] for o in done["tasks"]["each"]["output"]] == [totals[-1] + t for t in totals]
    assert ran == ["square.0", "add.0", "square.1", "add.1", "square.2", "add.2", "after"]


def test_asked_twice_with_every_message_delivered_twice_it_rewinds_once(local, clock, ran):
    run_id, _ = completed_run(local, clock, ran, CHAIN)
    assert local.engine.rewind_run(run_id, "b")["rewind"] == local.engine.rewind_run(run_id, "c")["rewind"] == 1
    deliver_twice(local)  # the first of the two began: the other (to c) is dropped
    done = local.engine.describe_run(run_id)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and sorted(ran) == ["b", "c", "log"]
    local.engine.handle({"k": "rewind", "run": run_id, "epoch": 1, "to": "b"})  # a late copy
    assert local.engine.describe_run(run_id)["status"] == "COMPLETED" and sorted(ran) == ["b", "c", "log"]


def test_a_redrive_of_the_same_epoch_cannot_act_once_the_rewind_began(local, clock, ran):
    run_id, _ = failed_run(local, clock, ran, CHAIN, "b")
    local.engine.rewind_run(run_id, "a")
    local.engine.redrive_run(run_id)  # both epoch 1: the rewind's message comes first
    rewind = local.queue.receive()
    assert rewind["k"] == "rewind"
    local.store.begin_rewind(run_id, 1, "a")  # the rewind began, then its worker died
    assert "rewind to 'a' is under way" in local.engine.redrive_run(run_id)["reason"]
    deliver_twice(local)  # the redrive: refused while the rewind is under way
    assert local.engine.describe_run(run_id)["status"] == "FAILED"
    local.engine.handle(rewind)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and ran == ["a", "b", "c", "log"]


def test_a_message_from_before_the_rewind_does_not_start_a_reset_task(local, clock, ran):
    run_id, _ = completed_run(local, clock, ran, CHAIN)
    plan_hash = local.store.get_run(run_id).plan_hash
    local.engine.rewind_run(run_id, "b")
    local.pump_once()
    local.engine.handle(encode(Exec(run_id, plan_hash, "c", 1)))  # a late duplicate from before
    assert local.engine.describe_run(run_id)["tasks"]["c"]["status"] == "PENDING" and "c" not in ran
    assert drive(local, run_id, clock)["outputs"] == {"c": 20} and ran == ["b", "c", "log"]


@pytest.mark.parametrize("where", ["begin_rewind", "reset_task", "reopen_run", "resolve_edge"])
def test_a_crash_anywhere_in_the_rewind_is_healed_by_its_redelivery(local, clock, ran, monkeypatch, where):
    """The worker dies right after its first write of a step (0 begin, 1 reset, 2 reopen, 3 restart)."""
    run_id, _ = completed_run(local, clock, ran, CHAIN.replace("depends_on: [b]", "depends_on: [a, b]"))
    local.engine.rewind_run(run_id, "b")
    killed_then_redelivered(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
    assert ran == ["b", "c", "log"]


def test_the_links_of_a_discarded_wait_stop_working(local, clock, ran):
    run_id = start(local, """
    workflow:
      metadata: {id: hooked}
      tasks:
        - {id: a, type: python, config: {code: "result = 1"}}
        - {id: hook, type: callback, depends_on: [a]}
        - {id: after, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']"}}
    """)
    old = settle(local, run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]
    local.engine.submit_callback(old, {"n": 1})
    assert settle(local, run_id)["status"] == "COMPLETED"
    local.engine.rewind_run(run_id, "hook")
    view = settle(local, run_id)
    assert view["status"] == "RUNNING" and view["tasks"]["hook"]["status"] == "WAITING"
    with pytest.raises(LinkError):  # the link of before the rewind is void
        local.engine.submit_callback(old, {"n": 9})
    local.engine.submit_callback(view["callbacks"][0]["url"].rsplit("/", 1)[1], {"n": 2})
    assert settle(local, run_id)["tasks"]["after"]["output"] == {"n": 2}


def test_with_compensate_the_discarded_tasks_compensations_run_first(local, clock, ran):
    text = SAGA.replace("raise RuntimeError('no cars left')", "result = 'CR-3'")
    run_id, _ = completed_run(local, clock, ran, text)
    asked = local.engine.rewind_run(run_id, "hotel", by="ops", reason="wrong dates", compensate=True)
    assert asked["discarded"] == ["car", "hotel"] and asked["compensating"] == ["car", "hotel"]
    assert local.engine.cancel_run(run_id)["cancelled"] is False  # (not yet begun: it has ended)
    local.pump_once()  # the rewind begins: the run compensates, latest first
    assert local.engine.describe_run(run_id)["status"] == "COMPENSATING"
    assert local.engine.rewind_run(run_id, "flight")["code"] == 409  # a rewind is under way
    assert local.engine.cancel_run(run_id)["cancelled"] is False  # its compensations are let be
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["cancel_car", "cancel_hotel", "hotel", "car", "log"]  # flight kept, not compensated
    runs = [(e.status, e.previous, e.reason) for e in local.history.of_run(run_id, limit=500).items
            if e.kind == "run"]
    assert ("COMPENSATING", "COMPLETED", "rewind 1 to 'hotel' by ops (wrong dates): compensating 2 tasks first") \
        in runs and ("RUNNING", "COMPENSATING", "rewind 1 to 'hotel': 1 tasks kept") in runs
    # Rewound again without compensate: nothing is compensated.
    assert local.engine.rewind_run(run_id, "car")["compensating"] == []
    assert drive(local, run_id, clock)["status"] == "COMPLETED" and ran[5:] == ["car", "log"]


@pytest.mark.parametrize("where", ["begin_rewind", "load", "reset_task", "reopen_run", "reset_task@"])
def test_a_crash_in_a_compensating_rewind_is_healed_by_its_redelivery(local, clock, ran, monkeypatch, where):
    """The worker dies right after the store's first ``where`` call of the rewind's messages: beginning,
    checking its compensations, resetting, reopening (in the message its last compensation sent)."""
    run_id, _ = completed_run(local, clock, ran, SAGA.replace("raise RuntimeError('no cars left')", "result = 1"))
    local.engine.rewind_run(run_id, "flight", compensate=True)
    died = killed_once(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["cancel_car", "cancel_hotel", "cancel_flight", "flight", "hotel", "car", "log"] and died == [where]


def killed_once(local, monkeypatch, where: str) -> list[str]:
    """Kill the worker once, right after the store's first ``where`` call while it handles a rewind's message
    (``reset_task@``: after its first reset of a compensation's item); the message then comes back twice.
    Returns the list the kill is recorded in."""

    class Killed(BaseException):
        pass

    write = where.rstrip("@")
    real, handle = getattr(local.store, write), local.engine.handle
    died: list[str] = []

    def dies_after(*args, **kwargs):
        real(*args, **kwargs)
        if not where.endswith("@") or "@" in args[1]:
            died.append(where)
            raise Killed(where)

    def handled(message, *args, **kwargs):
        if message.get("k") == "rewind" and not died:  # only the rewind's own steps die, once
            try:
                with monkeypatch.context() as patched:
                    patched.setattr(local.store, write, dies_after)
                    return handle(message, *args, **kwargs)
            except Killed:
                handle(message, *args, **kwargs)  # the message comes back, twice
        return handle(message, *args, **kwargs)

    monkeypatch.setattr(local.engine, "handle", handled)
    return died
