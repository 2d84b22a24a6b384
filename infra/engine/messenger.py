"""Sends the engine's typed messages: now or later through the work queue, at a time through a timer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from statemachine.messages import Exec, Message, encode

from ..ports import Timers, WorkQueue


class Messenger:
    def __init__(self, queue: WorkQueue, timers: Timers):
        self.queue = queue
        self.timers = timers

    def send(self, message: Message, delay: int = 0) -> None:
        self.queue.send(encode(message), delay)

    def schedule(self, name: str, at: datetime, message: Message) -> None:
        """Idempotent by ``name`` while the timer is pending (keys.timer_name)."""
        self.timers.schedule(name, at, encode(message))

    def send_exec(self, run_id: str, plan_hash: str, task_id: str, attempt: int, delay: int = 0,
                  key: str | None = None, ctx: dict[str, Any] | None = None, epoch: int = 0) -> None:
        """Run ``attempt`` of the item ``key`` (a role instance's or loop body's, else ``task_id``'s);
        ``ctx``: a role instance's context; ``epoch``: the item's redrive stamp."""
        self.send(Exec(run_id, plan_hash, task_id, attempt, key=key or "", ctx=ctx, epoch=epoch), delay)
