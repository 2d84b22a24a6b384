"""The circuit breaker's pure decisions (statemachine/circuit.py): when it opens, refuses, lets one trial
through, closes; each attempt counted once; the record's JSON."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from statemachine.circuit import (
    Circuit,
    CircuitEvent,
    CircuitState,
    admit,
    event_of_note,
    finished,
    millis,
    note_of_event,
)
from statemachine.plan import BreakerSpec

SPEC = BreakerSpec(name="payments_api", failures=3, window=60, open_for=30)
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fail_all(circuit: Circuit | None, holders: list[str], when: float) -> tuple[Circuit | None, list]:
    events = []
    for holder in holders:
        verdict = finished(circuit, SPEC, holder, False, at(when))
        circuit = verdict.write or circuit
        events.append(verdict.event)
    return circuit, events


def opened() -> Circuit:
    circuit, events = fail_all(None, ["a", "b", "c"], 0)
    assert events == [None, None, CircuitEvent.OPENED] and circuit is not None
    return circuit


def test_a_closed_breaker_admits_every_attempt_and_writes_nothing() -> None:
    assert admit(None, SPEC, "a", T0).allowed and admit(None, SPEC, "a", T0).write is None
    assert admit(Circuit("payments_api"), SPEC, "a", T0).write is None


def test_failures_within_the_window_open_it() -> None:
    circuit = opened()
    assert circuit.state is CircuitState.OPEN and circuit.failures == ()
    assert circuit.open_until == millis(at(30)) and circuit.changed_at == millis(T0)


def test_failures_the_window_forgot_do_not_count() -> None:
    circuit, _ = fail_all(None, ["a", "b"], 0)
    circuit, events = fail_all(circuit, ["c"], 61)  # a and b are over a minute old
    assert events == [None] and circuit is not None and circuit.state is CircuitState.CLOSED
    assert [holder for _, holder in circuit.failures] == ["c"]


def test_an_attempt_is_counted_once_however_often_it_reports() -> None:
    circuit, events = fail_all(None, ["a", "a", "a", "b"], 0)
    assert events == [None, None, None, None] and circuit is not None
    assert circuit.state is CircuitState.CLOSED and len(circuit.failures) == 2


def test_a_success_while_closed_changes_nothing() -> None:
    circuit, _ = fail_all(None, ["a", "b"], 0)
    assert finished(circuit, SPEC, "z", True, at(1)).write is None


def test_an_open_breaker_refuses_until_open_for_has_passed() -> None:
    circuit = opened()
    refused = admit(circuit, SPEC, "d", at(29.999))
    assert not refused.allowed and refused.write is None and refused.retry_at == millis(at(30))


def test_after_open_for_one_trial_goes_through_and_the_others_wait() -> None:
    circuit = opened()
    trial = admit(circuit, SPEC, "d", at(30))
    assert trial.allowed and trial.write is not None
    half = trial.write
    assert half.state is CircuitState.HALF_OPEN and half.trial == "d" and half.trial_until == millis(at(60))
    assert admit(half, SPEC, "d", at(31)).allowed  # the trial's own attempt, delivered again
    other = admit(half, SPEC, "e", at(31))
    assert not other.allowed and other.retry_at == millis(at(60))


def test_a_trial_that_never_reports_is_given_up_after_open_for() -> None:
    half = admit(opened(), SPEC, "d", at(30)).write
    taken = admit(half, SPEC, "e", at(60))
    assert taken.allowed and taken.write is not None and taken.write.trial == "e"


def test_the_trials_success_closes_it() -> None:
    half = admit(opened(), SPEC, "d", at(30)).write
    verdict = finished(half, SPEC, "d", True, at(31))
    assert verdict.event is CircuitEvent.CLOSED and verdict.write is not None
    assert verdict.write.state is CircuitState.CLOSED and verdict.write.trial == ""
    assert admit(verdict.write, SPEC, "x", at(31)).allowed


def test_the_trials_failure_opens_it_again_for_open_for() -> None:
    half = admit(opened(), SPEC, "d", at(30)).write
    verdict = finished(half, SPEC, "d", False, at(35))
    assert verdict.event is CircuitEvent.REOPENED and verdict.write is not None
    assert verdict.write.state is CircuitState.OPEN and verdict.write.open_until == millis(at(65))


@pytest.mark.parametrize("ok", [True, False])
def test_a_late_attempt_admitted_before_it_opened_changes_nothing(ok: bool) -> None:
    circuit = opened()
    assert finished(circuit, SPEC, "early", ok, at(1)) == finished(circuit, SPEC, "early", ok, at(1))
    assert finished(circuit, SPEC, "early", ok, at(1)).write is None
    half = admit(circuit, SPEC, "d", at(30)).write
    assert finished(half, SPEC, "early", ok, at(31)).write is None  # only the trial decides


def test_the_record_round_trips_through_json() -> None:
    circuit, _ = fail_all(None, ["a", "b"], 0)
    assert circuit is not None
    assert Circuit.from_json(circuit.to_json(), 7) == Circuit(**{**circuit.__dict__, "version": 7})


def test_an_event_note_reads_back() -> None:
    assert event_of_note(note_of_event("payments_api", CircuitEvent.OPENED)) == ("payments_api", CircuitEvent.OPENED)
    assert event_of_note("nonsense") is None and event_of_note("x:unknown") is None
