"""Circuit breakers at the edge: read a breaker, ask the core (statemachine/circuit.py), write its answer.

Each decision is taken on the breaker as read and written conditionally on its version
(``StateStore.put_circuit``); a lost race is decided again on the record that won, so concurrent workers
never lose each other's counts. ``admit`` is asked once an attempt is claimed, before it calls anything:
refused, the attempt fails with ``CircuitOpen`` and calls nothing. ``after`` is asked when an admitted
attempt ended, around the write of its outcome: the change of state it made (opened, reopened, closed)
is told in that write's note, so the run's history has it and the metrics count it
(``statemachine/metrics.py``), without a write of its own.

A crash between the breaker's write and the outcome's loses only that note: the breaker's state stands,
and the attempt, run again, is the same holder, counted once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from statemachine.circuit import CIRCUIT_OPEN, admit, finished, note_of_event, refusal_message
from statemachine.plan import BreakerSpec

from ..ports import Clock, StateStore, StoreError
from ..tasks.base import TaskFailure
from .journal import Journal

log = logging.getLogger(__name__)
TRIES = 50  # each lost race means another worker's decision on the same breaker was written meanwhile


class Circuits:
    def __init__(self, store: StateStore, clock: Clock, journal: Journal):
        self.store = store
        self.clock = clock
        self.journal = journal

    def admit(self, spec: BreakerSpec, holder: str) -> TaskFailure | None:
        """None: the attempt may call its dependency; else the failure to record instead."""
        current = self.store.get_circuit(spec.key)
        for _ in range(TRIES):
            decision = admit(current, spec, holder, self.clock.now())
            if not decision.allowed:
                return TaskFailure(CIRCUIT_OPEN, refusal_message(spec.name, decision.retry_at))
            if decision.write is None:
                return None
            applied, current = self.store.put_circuit(decision.write)
            if applied:
                return None
        raise StoreError(f"circuit breaker {spec.name!r}: still contended after {TRIES} tries")

    @contextmanager
    def after(self, spec: BreakerSpec | None, holder: str, failure: TaskFailure | None) -> Iterator[None]:
        """Count an admitted attempt's end (``failure`` None: it succeeded), then run the body (the
        outcome's write) telling the change of state it made, if any. A ``CircuitOpen`` counts nothing."""
        event = None
        if spec is not None and (failure is None or failure.error_type != CIRCUIT_OPEN):
            event = self._finished(spec, holder, failure is None)
        with self.journal.telling_circuit(event):
            yield

    def _finished(self, spec: BreakerSpec, holder: str, ok: bool) -> str | None:
        current = self.store.get_circuit(spec.key)
        for _ in range(TRIES):
            verdict = finished(current, spec, holder, ok, self.clock.now())
            if verdict.write is None:
                return None
            applied, current = self.store.put_circuit(verdict.write)
            if applied:
                if verdict.event is None:
                    return None
                log.info("circuit breaker %s %s", spec.name, verdict.event.value)
                return note_of_event(spec.name, verdict.event)
        raise StoreError(f"circuit breaker {spec.name!r}: still contended after {TRIES} tries")
