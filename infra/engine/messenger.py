"""Sends the engine's typed messages: now or later through the work queue, at a time through a timer.

A task made ready by the message being handled can be carried on in the same invocation instead of
going through the queue (``carrying`` / ``ready``; the Engine runs what was collected, see
infra/engine/carry_on.py): no SendMessage, no receive, no delete for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from statemachine.messages import Exec, Message, encode

from ..ports import Timers, WorkQueue


class Messenger:
    def __init__(self, queue: WorkQueue, timers: Timers):
        self.queue = queue
        self.timers = timers
        # Per thread: the local runtime's API and pump threads share one engine.
        self._local = threading.local()

    def send(self, message: Message, delay: int = 0) -> None:
        self.queue.send(encode(message), delay)

    def send_many(self, messages: list[Exec]) -> None:
        self.queue.send_many([encode(message) for message in messages])

    def schedule(self, name: str, at: datetime, message: Message) -> None:
        """Idempotent by ``name`` while the timer is pending (keys.timer_name)."""
        self.timers.schedule(name, at, encode(message))

    def send_exec(self, run_id: str, plan_hash: str, task_id: str, attempt: int, delay: int = 0,
                  key: str | None = None, ctx: dict[str, Any] | None = None, epoch: int = 0) -> None:
        """Run ``attempt`` of the item ``key`` (a role instance's or loop body's, else ``task_id``'s);
        ``ctx``: a role instance's context; ``epoch``: the item's redrive stamp."""
        self.send(Exec(run_id, plan_hash, task_id, attempt, key=key or "", ctx=ctx, epoch=epoch), delay)

    def carrying_now(self) -> bool:
        return getattr(self._local, "collected", None) is not None

    def ready(self, run_id: str, plan_hash: str, task_id: str, key: str | None = None,
              ctx: dict[str, Any] | None = None, epoch: int = 0, edge: tuple[str, str] | None = None,
              unwritten: bool = False) -> None:
        """A task became ready by the edge just applied: collected when the handler carries on (the
        message being handled stays the ready task's until the invocation ends), else sent. ``edge``:
        (dependency, outcome) when the edge was not written: the carried task's claim counts it;
        ``unwritten``: the task had no item a moment ago (Exec.unwritten)."""
        message = Exec(run_id, plan_hash, task_id, 1, key=key or "", ctx=ctx, epoch=epoch, edge=edge,
                       unwritten=unwritten)
        collected: list[Exec] | None = getattr(self._local, "collected", None)
        if collected is None:
            self.send(message)
        else:
            collected.append(message)

    @contextmanager
    def carrying(self) -> Iterator[list[Exec]]:
        """Collect the ready tasks ``ready`` names while the block runs, instead of sending them. The
        caller runs or sends every one it gets; if the block raised, they go with it, which is safe only
        because the message being handled then comes back and makes them ready again (Engine.handle)."""
        outer = getattr(self._local, "collected", None)
        collected: list[Exec] = []
        self._local.collected = collected
        try:
            yield collected
        finally:
            self._local.collected = outer
