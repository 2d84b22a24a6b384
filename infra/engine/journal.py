"""Where the engine's transition records go (statemachine/events.py).

The engine hands every applied transition to its :class:`Journal`, which stamps it with the time
and the cause of the work in hand and passes it to a sink. The cause is set by the dispatcher for
the span of one message or request (``caused_by``), in a context variable, so the API thread and
the worker thread of one process (``loopline run --local``) each record their own.

Sinks: :class:`LoggedTransitions` (the default: one structured log line per transition on the
``loopline.transitions`` logger, at DEBUG, so they cost nothing unless asked for) and
:class:`KeptTransitions` (kept in memory, bounded: tools and tests read them). Recording never adds
a write to a transition: a sink that fails is logged and the transition stands.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Protocol

from statemachine.events import Cause, Event, RunTransition, TaskTransition
from statemachine.state import LastChange

from ..clock import iso
from ..ports import Clock, TaskRecord

log = logging.getLogger(__name__)
transitions_log = logging.getLogger("loopline.transitions")
NOTE_LIMIT = 500  # a reason (which may quote an error) is cut: the note rides on every write
_cause: contextvars.ContextVar[Cause | None] = contextvars.ContextVar("loopline_cause", default=None)
# A circuit breaker's change of state ("name:event", statemachine/circuit.py) the outcome written next tells:
# the first note taken in the span has it (the outcome's own write), no later one (what it propagates to).
_circuit: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("loopline_circuit", default=None)


class TransitionSink(Protocol):
    def record(self, event: Event) -> None: ...


class LoggedTransitions:
    def record(self, event: Event) -> None:
        if transitions_log.isEnabledFor(logging.DEBUG):
            transitions_log.debug(json.dumps({"event": type(event).__name__, **asdict(event)}, default=str))


class KeptTransitions:
    """The last ``limit`` transitions, in the order they were applied."""

    def __init__(self, limit: int = 100_000):
        self.events: deque[Event] = deque(maxlen=limit)

    def record(self, event: Event) -> None:
        self.events.append(event)

    def of_run(self, run_id: str) -> list[Event]:
        return [e for e in self.events if e.run_id == run_id]


class EverySink:
    """Each transition to every one of ``sinks`` (local mode keeps them, and logs them for `loopline dev`)."""

    def __init__(self, *sinks: TransitionSink):
        self.sinks = sinks

    def record(self, event: Event) -> None:
        for sink in self.sinks:
            sink.record(event)


class Journal:
    def __init__(self, clock: Clock, sink: TransitionSink):
        self.clock = clock
        self.sink = sink

    @contextmanager
    def caused_by(self, cause: Cause) -> Iterator[None]:
        token = _cause.set(cause)
        try:
            yield
        finally:
            _cause.reset(token)

    @contextmanager
    def telling_circuit(self, circuit: str | None) -> Iterator[None]:
        """The first note made inside tells the circuit breaker's change ``circuit`` (infra/engine/circuits.py)."""
        token = _circuit.set([circuit] if circuit else None)
        try:
            yield
        finally:
            _circuit.reset(token)

    def note(self, reason: str) -> LastChange:
        """Why a write is made, stored with it (the item's ``last_change``): the run's history is read
        off the table's stream from it, so the history costs no write of its own."""
        cause, untold = _cause.get(), _circuit.get()
        circuit = untold.pop() if untold else None
        if circuit:
            name, _, event = circuit.rpartition(":")
            reason = f"{reason}; circuit breaker '{name}' {event}"
        note = LastChange(reason=reason[:NOTE_LIMIT], at=iso(self.clock.now()),
                          cause_kind=cause.kind.value if cause else "",
                          cause_name=cause.name[:NOTE_LIMIT] if cause else "",
                          cause_subject=cause.subject[:NOTE_LIMIT] if cause else "")
        if circuit:
            note["circuit"] = circuit
        return note

    def task(self, run_id: str, before: TaskRecord | None, after: TaskRecord, reason: str) -> None:
        """``after`` was written over ``before`` (as the writer read it; None: no item)."""
        previous = before.status if before is not None else None
        self._record(TaskTransition(run_id, after.task_id, after.status, previous, after.attempt, reason,
                                    iso(self.clock.now()), _cause.get()))

    def run(self, run_id: str, status: str, previous: str | None, reason: str) -> None:
        self._record(RunTransition(run_id, status, previous, reason, iso(self.clock.now()), _cause.get()))

    def _record(self, event: Event) -> None:
        try:
            self.sink.record(event)
        except Exception:  # a sink's failure must not undo or repeat a transition that is written
            log.exception("could not record a transition of run %s", event.run_id)
