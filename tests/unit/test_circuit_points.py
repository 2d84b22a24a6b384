"""A circuit breaker's openings and closings as metric points (statemachine/metrics.py) and EMF series
(infra/aws/emf_metrics.py): read once from the note of the outcome that caused them."""

from __future__ import annotations

import json

from infra.aws.emf_metrics import EmfMetrics
from statemachine.history import entries_of, image
from statemachine.metrics import MetricName, MetricPoint, MetricUnit, points_of
from statemachine.state import LastChange

T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"


def note(reason: str, at: str, circuit: str | None = None) -> LastChange:
    found = LastChange(reason=reason, at=at, cause_kind="message", cause_name="exec", cause_subject="")
    if circuit:
        found["circuit"] = circuit
    return found


def change(old: dict | None, new: dict) -> dict:
    return {"Keys": {"pk": new["pk"], "sk": new["sk"]}, "SequenceNumber": "9",
            **({"OldImage": old} if old else {}), "NewImage": new}


RUNNING = image("r", "charge", "RUNNING", 2, note("attempt 2", T0))
OPENED = image("r", "charge", "FAILED", 2, note("failed: ConnectionError; circuit breaker 'pay' opened", T1,
                                                "pay:opened"))


def test_an_outcome_that_opened_a_breaker_counts_one_opening_and_says_so_in_the_history() -> None:
    points = points_of(change(RUNNING, OPENED))
    assert MetricPoint(MetricName.CIRCUIT_OPENED, MetricUnit.COUNT, 1, "OPEN", breaker="pay") in points
    [entry] = entries_of(change(RUNNING, OPENED))
    assert entry.reason.endswith("circuit breaker 'pay' opened")


def test_reopened_counts_as_opened_and_closed_as_closed() -> None:
    reopened = image("r", "charge", "FAILED", 2, note("failed", T1, "pay:reopened"))
    closed = image("r", "charge", "COMPLETED", 2, note("completed", T1, "pay:closed"))
    assert [p.name for p in points_of(change(RUNNING, reopened)) if p.breaker] == [MetricName.CIRCUIT_OPENED]
    assert [p.name for p in points_of(change(RUNNING, closed)) if p.breaker] == [MetricName.CIRCUIT_CLOSED]


def test_a_later_write_that_keeps_the_note_counts_nothing_again() -> None:
    assert not [p for p in points_of(change(OPENED, OPENED)) if p.breaker]
    assert not [p for p in points_of(change(None, RUNNING)) if p.breaker]


def test_emf_emits_a_breaker_point_with_the_breaker_alone_too(capsys, monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "loopline")
    point = MetricPoint(MetricName.CIRCUIT_OPENED, MetricUnit.COUNT, 1, "OPEN", "payments", "http", "pay")
    EmfMetrics("Test").emit([point])
    sets = []
    for line in capsys.readouterr().out.splitlines():
        doc = json.loads(line)
        [dims] = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        sets.append({d: doc[d] for d in dims if d != "service"})
    assert sets == [{"workflow": "payments", "task_type": "http", "status": "OPEN", "breaker": "pay"},
                    {"status": "OPEN"}, {"breaker": "pay"}]
