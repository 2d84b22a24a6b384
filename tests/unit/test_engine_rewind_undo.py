"""Rewind of a moving run with ``compensate`` (issue #13 item 4), in memory and on SQLite: the discarded tasks'
compensations run first while the rewind holds the run PAUSED, then it reopens from before the task."""

from __future__ import annotations

import pytest

from tests.unit.test_engine_errors import SAGA
from tests.unit.test_engine_rewind import killed_once, local  # noqa: F401  (the fixture: memory and SQLite)
from tests.unit.test_engine_rewind_moving import (  # noqa: F401  (two fixtures: each_message_by_hand, ran)
    each_message_by_hand,
    held,
    item,
    ran,
    rewound,
)
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, start

# The saga's trip booked (its car too), then a payment that waits an hour: while it waits the run is RUNNING,
# every booking COMPLETED.
TRIP = SAGA.replace("raise RuntimeError('no cars left')", "result = 'CR-3'").replace("    - id: cancel_flight", """\
    - {id: settle_up, type: wait, depends_on: [car], config: {duration: 1h}}
    - {id: pay, type: python, depends_on: [settle_up], config: {code: "result = tasks['hotel']['output']"}}
    - id: cancel_flight""")
CANCEL_CAR = """    - {id: cancel_car, type: python, config: {code: "result = 'never'"}}"""


def waiting_run(local, ran) -> str:  # noqa: F811
    """The trip booked and waiting on its timer (RUNNING)."""
    run_id = start(local, TRIP)
    view = settle(local, run_id)
    assert view["status"] == "RUNNING" and view["tasks"]["settle_up"]["status"] == "WAITING", view
    ran.clear()
    return run_id


def runs_history(local, run_id) -> list[tuple[str, str, str]]:  # noqa: F811
    return [(e.status, e.previous, e.reason) for e in local.history.of_run(run_id, limit=500).items if e.kind == "run"]


def test_a_running_run_rewound_with_compensate_undoes_the_discarded_bookings_then_runs_them_again(local, clock,  # noqa: F811
                                                                                                  ran):  # noqa: F811
    run_id = waiting_run(local, ran)
    asked = local.engine.rewind_run(run_id, "hotel", by="ops", reason="wrong dates", compensate=True)
    assert asked["status"] == "RUNNING" and asked["discarded"] == ["car", "hotel", "pay", "settle_up"]
    assert asked["compensating"] == ["car", "hotel"]  # latest first; flight is kept, not compensated
    local.engine.handle(local.queue.receive())  # the rewind begins: PAUSED, its compensations fixed
    view = local.engine.describe_run(run_id)
    assert view["status"] == "PAUSED" and view["tasks"]["car"]["status"] == "COMPLETED"
    assert local.engine.resume_run(run_id)["changed"] is False  # held by the rewind
    assert local.engine.cancel_run(run_id)["cancelled"] is False  # its compensations are let be
    assert "rewind to 'hotel' is under way" in local.engine.rewind_run(run_id, "flight")["reason"]
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and done["tasks"]["pay"]["output"] == "HT-2"
    assert ran == ["cancel_car", "cancel_hotel", "hotel", "car", "pay", "log"]
    items = local.store.list_tasks(run_id)  # their items reset with the tasks they compensated (runs: history)
    assert {key: (rec.status, rec.redrive) for key, rec in items.items() if key.startswith("cancel_")} \
        == {"cancel_car@car": ("PENDING", 1), "cancel_hotel@hotel": ("PENDING", 1)}
    history = runs_history(local, run_id)
    assert ("PAUSED", "RUNNING", "paused to rewind 1 to 'hotel' by ops (wrong dates): compensating 2 tasks first") \
        in history
    assert ("RUNNING", "PAUSED", "rewind 1 to 'hotel': 1 tasks kept") in history  # (sent by its last compensation)
    undone = [(e.item, e.status) for e in local.history.of_run(run_id, limit=500).items if e.item.startswith("cancel_")]
    assert undone == [("cancel_car@car", "RUNNING"), ("cancel_car@car", "COMPLETED"), ("cancel_hotel@hotel", "RUNNING"),
                      ("cancel_hotel@hotel", "COMPLETED"), ("cancel_car@car", "PENDING"),
                      ("cancel_hotel@hotel", "PENDING")]
    assert local.store.get_run(run_id).end_comps == []  # its own end's (nothing failed): the rewind's were cleared


def test_the_compensations_run_while_the_run_is_held_and_nothing_of_its_flow_starts(local, clock, ran):  # noqa: F811
    run_id = waiting_run(local, ran)
    local.engine.rewind_run(run_id, "car", compensate=True)
    local.engine.handle(local.queue.receive())  # begun
    clock.advance(3600)  # the wait's timer comes due while the run is held: it is parked (not fired), then reset
    local.engine.handle(local.queue.receive())  # the compensation, queued first: it runs on the held run
    assert ran == ["cancel_car"] and local.engine.describe_run(run_id)["status"] == "PAUSED"
    while (message := local.queue.receive())["k"] != "wake":  # (what the bookings queued before: stale)
        local.engine.handle(message)
    local.engine.handle(message)  # the timer, due before the rewind's message the compensation's end sent
    assert local.engine.describe_run(run_id)["status"] == "PAUSED" and item(local, run_id, "settle_up").parked
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and ran == ["cancel_car", "car", "pay", "log"]
    assert item(local, run_id, "settle_up").redrive == 1  # waited again, at the new epoch


@pytest.mark.parametrize("where", ["begin_rewind", "load", "reset_task", "reopen_moving", "reset_task@"])
def test_a_crash_anywhere_in_a_compensating_moving_rewind_is_healed_by_its_redelivery(local, clock, ran,  # noqa: F811
                                                                                        monkeypatch, where):
    """The worker dies right after the store's first ``where`` call of the rewind's messages (beginning,
    checking its compensations, resetting, reopening); the message then comes back twice."""
    run_id = waiting_run(local, ran)
    local.engine.rewind_run(run_id, "flight", compensate=True)
    died = killed_once(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and died == [where]
    assert ran == ["cancel_car", "cancel_hotel", "cancel_flight", "flight", "hotel", "car", "pay", "log"]


def test_every_message_delivered_twice_compensates_once(local, clock, ran):  # noqa: F811
    run_id = waiting_run(local, ran)
    local.engine.rewind_run(run_id, "hotel", compensate=True)
    local.engine.rewind_run(run_id, "hotel", compensate=True)  # asked twice: one epoch, one rewind
    deliver_twice(local)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1
    assert ran == ["cancel_car", "cancel_hotel", "hotel", "car", "pay", "log"]


def test_a_discarded_task_with_a_compensation_still_at_work_refuses_compensate(local, clock, ran):  # noqa: F811
    run_id = start(local, TRIP)
    late = held(local, "car")  # car is RUNNING: its code ran, its result is on its way back
    refused = local.engine.rewind_run(run_id, "hotel", compensate=True)
    assert refused["code"] == 409 and "car declares a compensation and is still doing its work (RUNNING)" \
        in refused["reason"], refused
    rewound(local, run_id, "hotel")  # without compensate: as any moving rewind, car's late result is fenced
    assert local.engine.accept_result(late).startswith("dropped")
    assert drive(local, run_id, clock)["status"] == "COMPLETED"


def test_a_wait_compensation_fires_while_the_rewind_holds_the_run(local, clock, ran):  # noqa: F811
    assert CANCEL_CAR in TRIP
    text = TRIP.replace(CANCEL_CAR, "    - {id: cancel_car, type: wait, config: {duration: 5m}}")
    run_id = start(local, text)
    settle(local, run_id)
    ran.clear()
    local.engine.rewind_run(run_id, "car", compensate=True)
    local.engine.handle(local.queue.receive())
    view = settle(local, run_id)
    assert view["status"] == "PAUSED" and item(local, run_id, "cancel_car@car").status == "WAITING"
    done = drive(local, run_id, clock)  # its timer fires on the held run: it ends, the rewind goes on
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and ran == ["car", "pay", "log"]


def test_a_compensating_run_is_refused_with_the_reason(local, clock, ran):  # noqa: F811
    text = TRIP.replace("result = tasks['hotel']['output']", "raise RuntimeError('card declined')")
    run_id = start(local, text)
    settle(local, run_id)
    clock.advance(3600)
    local.engine.handle(local.queue.receive())  # the timer: pay runs, fails, and the run compensates
    while local.engine.describe_run(run_id)["status"] != "COMPENSATING":
        assert local.pump_once(), local.engine.describe_run(run_id)
    refused = local.engine.rewind_run(run_id, "hotel", compensate=True)
    assert refused["code"] == 409 and refused["reason"].startswith("it is COMPENSATING"), refused
    done = drive(local, run_id, clock)
    assert done["status"] == "FAILED"  # let it end, then rewind it: the rest is undone by its own saga already
    assert local.engine.rewind_run(run_id, "flight")["changed"] is True

