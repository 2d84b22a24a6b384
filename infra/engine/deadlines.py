"""The timer of a waiting task: a wait's wake-up, or the deadline of a link or a sub-workflow."""

from __future__ import annotations

from statemachine.messages import Kind, TimerFired
from statemachine.plan import Node, Plan
from statemachine.status import WaitingFor

from ..clock import parse_iso
from ..ports import TaskRecord
from .keys import timer_name
from .messenger import Messenger


def arm_deadline(messenger: Messenger, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
    """Schedule the timer of WAITING ``rec`` if it has one (idempotent by name while pending)."""
    if not rec.wake_at:
        return
    kind = Kind.WAKE if rec.waiting_for == WaitingFor.TIMER else Kind.TIMEOUT
    message = TimerFired(kind, run_id, plan.hash, node.id, rec.attempt, key=rec.task_id, epoch=rec.redrive)
    round_ = (rec.approval or {}).get("round", 0) if rec.waiting_for == WaitingFor.APPROVAL else 0
    # an escalated approval has a new deadline: its own timer name (names are idempotency keys)
    name = timer_name(run_id, rec.task_id, rec.attempt, f"{kind.value}{round_ or ''}", rec.redrive)
    messenger.schedule(name, parse_iso(rec.wake_at), message)
