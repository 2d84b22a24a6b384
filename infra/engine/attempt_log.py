"""The record of a task's ended attempts: number, start, end and error of the last few.

It is carried in the write that ends the attempt (a retry scheduled, the task finished), computed
from the item that write is conditional on, so it costs no request of its own and two racing
writers cannot both add to it: the one whose condition holds writes the list it computed.
"""

from __future__ import annotations

from typing import Any

from statemachine.state import AttemptEntry

from ..ports import TaskRecord

ATTEMPTS_KEPT = 10  # per task item; older entries are dropped (the count stays in ``attempt``)


def with_ended_attempt(rec: TaskRecord, ended_at: str, error: dict[str, Any] | None) -> dict[str, Any]:
    """The ``attempt_log`` field for the write that ends ``rec``'s current attempt ({} if none ran)."""
    if rec.attempt < 1:
        return {}
    entry: AttemptEntry = {"attempt": rec.attempt, "started_at": rec.attempt_started_at or rec.started_at,
                           "ended_at": ended_at,
                           "error": {"type": error.get("type"), "message": error.get("message")} if error else None}
    earlier = [e for e in rec.attempt_log or [] if e.get("attempt") != rec.attempt]  # a takeover's repeat
    return {"attempt_log": (earlier + [entry])[-ATTEMPTS_KEPT:]}
