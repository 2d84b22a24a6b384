"""Carrying on in the same invocation: a task made ready by the message just handled runs next, in
this process, instead of going round the work queue (one SendMessage, one receive and one delete
fewer per transition; issue #12 item 2).

Why it stays durable: the message being handled is deleted only when the invocation ends. Until
then, a crash brings it back, and its redelivery walks on: the edge it applies finds the carried
task and, because its claim marked it ``carried`` (it has no exec message of its own), either
propagates it in turn (it ended) or sends the exec it never had (it was started: its delivery then
waits for the lease, takes over, or makes sure of its wait or retry). ``Propagation.apply_edge``
holds that rule.

What is carried: one ready task per step, the first made ready; the others go through the queue at
once, so parallel branches still run in parallel on other workers. It stops after ``limit`` steps,
or when the invocation has less than ``MARGIN`` seconds left; what remains is sent.
"""

from __future__ import annotations

import logging
from typing import Callable

from statemachine.events import cause_of
from statemachine.messages import Exec

from .attempts import Attempts, Busy
from .journal import Journal
from .messenger import Messenger

log = logging.getLogger(__name__)
MARGIN = 6.0  # seconds: loading, claiming and recording one more step, with room to spare


class CarryOn:
    def __init__(self, attempts: Attempts, messenger: Messenger, journal: Journal, limit: int):
        self.attempts = attempts
        self.messenger = messenger
        self.journal = journal
        self.limit = limit  # steps per invocation; 0: every ready task goes through the queue

    def run(self, ready: list[Exec], time_left: Callable[[], float] | None) -> None:
        """Run (or send) every message in ``ready``, and what each step makes ready in turn."""
        steps = 0
        while ready:
            first, rest = ready[0], ready[1:]
            if rest:
                self.messenger.send_many(rest)  # parallel branches: to other workers, in one request
            if steps >= self.limit or (time_left is not None and time_left() < MARGIN):
                self.messenger.send(first)
                return
            steps += 1
            with self.messenger.carrying() as ready:
                try:
                    with self.journal.caused_by(cause_of(first)):
                        self.attempts.on_exec(first, time_left, carried=True)
                except Busy:
                    self.messenger.send(first)  # another delivery holds it: this one comes back later
                except Exception:
                    # The message that started this invocation was handled; this step goes through the
                    # queue like any exec (with what it made ready so far), and is retried from there.
                    log.exception("carrying on with %s failed; it is sent to the queue", first.item)
                    self.messenger.send(first)
