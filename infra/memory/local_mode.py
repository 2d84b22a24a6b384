"""Local mode: the same engine and handlers on in-memory adapters: no AWS, no emulator."""

from __future__ import annotations

import time
from typing import Callable

from .. import wiring
from ..clock import SystemClock
from ..engine import Busy, Engine, EngineSettings
from ..links import LinkSigner
from ..ports import Clock
from .queue import InMemoryQueue, InMemoryTimers
from .store import InMemoryStore


class LocalMode:
    def __init__(self, clock: Clock | None = None, public_url: str = "http://127.0.0.1:8080",
                 lease_seconds: float = 60.0):
        self.clock = clock or SystemClock()
        self.store = InMemoryStore()
        self.queue = InMemoryQueue(self.clock)
        self.timers = InMemoryTimers(self.queue)
        settings = EngineSettings(public_url=public_url, lease_seconds=lease_seconds, env=wiring.exposed_env())
        from ..local.keyfile import local_link_key

        self.engine = Engine(self.store, self.queue, self.timers, LinkSigner(local_link_key().encode()), self.clock,
                             settings)
        wiring.use_engine(self.engine)  # the api handler (for approval links) drives this engine

    def pump_once(self) -> int:
        message = self.queue.receive()
        if message is None:
            return 0
        try:
            self.engine.handle(message)
        except Busy:
            self.queue.send(message, delay_seconds=1)
        return 1

    def run_until(self, done: Callable[[], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if self.pump_once() == 0:
                due = self.queue.next_due()
                wait = 0.05 if due is None else (due - self.clock.now()).total_seconds()
                time.sleep(min(max(wait, 0.001), 0.05))
        return done()
