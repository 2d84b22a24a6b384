"""What one delivery of an exec message does, decided from plain state: no store, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from statemachine.delivery import Claim, Step, decide_delivery

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Run:
    status: str = "RUNNING"
    halt: bool = False
    rewinding: int | None = None


@dataclass(frozen=True)
class Task:
    status: str = "PENDING"
    attempt: int = 0
    redrive: int = 0
    token_hash: str | None = None


def decide(run=Run(), task=Task(), attempt=1, epoch=0, watch=False, flow=True, lease=None, role="flow"):
    return decide_delivery(run, task, attempt=attempt, epoch=epoch, watch=watch, flow=flow, lease_until=lease,
                           now=NOW, role=role)


LATER, EARLIER = NOW + timedelta(seconds=30), NOW - timedelta(seconds=1)


@pytest.mark.parametrize("case, run, task, kwargs, step, claim", [
    ("first delivery", Run(), Task(), {}, Step.CLAIM, Claim.FRESH),
    ("no such run", None, Task(), {}, Step.IGNORE, None),
    ("the run ended", Run("COMPLETED"), Task(), {}, Step.IGNORE, None),
    ("a message of before a redrive", Run(), Task(redrive=2), {"epoch": 1}, Step.IGNORE, None),
    ("the run is stopping", Run(halt=True), Task("RUNNING", 1), {}, Step.CANCEL, None),
    ("a role still runs in a stopping run", Run(halt=True), Task(), {"flow": False}, Step.CLAIM, Claim.FRESH),
    ("paused", Run("PAUSED"), Task(), {}, Step.PARK, None),
    ("paused, but a wait keeps waiting", Run("PAUSED"), Task("WAITING", 1), {}, Step.ENSURE_WAIT, None),
    ("held by a rewind: its compensation runs", Run("PAUSED", rewinding=1), Task(),
     {"flow": False, "role": "compensation"}, Step.CLAIM, Claim.FRESH),
    ("held by a rewind: a handler parks", Run("PAUSED", rewinding=1), Task(), {"flow": False, "role": "handler"},
     Step.PARK, None),
    ("held by a rewind: a flow task parks", Run("PAUSED", rewinding=1), Task(), {}, Step.PARK, None),
    ("paused by an operator: a compensation parks", Run("PAUSED"), Task(), {"flow": False, "role": "compensation"},
     Step.PARK, None),
    ("a duplicate after the outcome", Run(), Task("COMPLETED", 1), {}, Step.PROPAGATE, None),
    ("a watchdog of an attempt that is over", Run(), Task("COMPLETED", 1), {"watch": True}, Step.IGNORE, None),
    ("a waiting task's message again", Run(), Task("WAITING", 1), {}, Step.ENSURE_WAIT, None),
    ("a retry scheduled before a crash", Run(), Task("RETRYING", 2), {}, Step.SCHEDULE_RETRY, None),
    ("the retry comes due", Run(), Task("RETRYING", 2), {"attempt": 2}, Step.CLAIM, Claim.RESUMED),
    ("an approved gate", Run(), Task("READY", 1), {}, Step.CLAIM, Claim.RESUMED),
    ("held elsewhere", Run(), Task("RUNNING", 1), {"lease": LATER}, Step.BUSY, None),
    ("out with the task runner", Run(), Task("RUNNING", 1, token_hash="h"), {"lease": LATER}, Step.REARM_WATCHDOG,
     None),
    ("the holder died", Run(), Task("RUNNING", 1), {"lease": EARLIER}, Step.CLAIM, Claim.TAKEOVER),
    ("the watchdog finds the runner silent", Run(), Task("RUNNING", 1, token_hash="h"),
     {"lease": EARLIER, "watch": True}, Step.CLAIM, Claim.TAKEOVER),
    ("an attempt that is over", Run(), Task("RUNNING", 3), {"attempt": 2}, Step.IGNORE, None),
    ("a second first-attempt message", Run(), Task("PENDING"), {"attempt": 2}, Step.IGNORE, None),
])
def test_each_state_gets_its_step(case, run, task, kwargs, step, claim):
    delivery = decide(run, task, **kwargs)
    assert (delivery.step, delivery.claim) == (step, claim), (case, delivery.why)
    assert delivery.why
