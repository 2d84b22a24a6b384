"""The attempt log a task's ending write carries (infra/engine/attempt_log.py)."""

from __future__ import annotations

from infra.engine.attempt_log import ATTEMPTS_KEPT, with_ended_attempt
from infra.ports import TaskRecord


def test_an_ended_attempt_is_added_with_its_error():
    rec = TaskRecord("t", status="RUNNING", attempt=1, started_at="2030-01-01T00:00:00.000Z",
                     attempt_started_at="2030-01-01T00:00:01.000Z")
    logged = with_ended_attempt(rec, "2030-01-01T00:00:02.000Z", {"type": "E", "message": "m", "extra": 1})
    assert logged == {"attempt_log": [{"attempt": 1, "started_at": "2030-01-01T00:00:01.000Z",
                                       "ended_at": "2030-01-01T00:00:02.000Z", "error": {"type": "E", "message": "m"}}]}
    assert with_ended_attempt(TaskRecord("t"), "2030-01-01T00:00:02.000Z", None) == {}  # no attempt ran


def test_the_log_is_bounded_and_a_repeated_attempt_counts_once():
    entries = [{"attempt": n, "started_at": None, "ended_at": "x", "error": None} for n in range(1, ATTEMPTS_KEPT + 1)]
    rec = TaskRecord("t", attempt=ATTEMPTS_KEPT + 1, attempt_log=entries)  # type: ignore[arg-type]
    log = with_ended_attempt(rec, "y", None)["attempt_log"]
    assert len(log) == ATTEMPTS_KEPT and [e["attempt"] for e in log] == list(range(2, ATTEMPTS_KEPT + 2))
    again = TaskRecord("t", attempt=ATTEMPTS_KEPT + 1, attempt_log=log)
    assert [e["attempt"] for e in with_ended_attempt(again, "z", None)["attempt_log"]] == [e["attempt"] for e in log]
