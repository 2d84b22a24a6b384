"""Circuit breakers: whether a task may call its dependency now, and what a finished attempt does to the
breaker (docs/reference.md, circuit_breaker).

A breaker is named by the tasks that use it (``circuit_breaker.name``) and shared by every run of the
workflow naming it (kept under ``BreakerSpec.key``: the workflow's id and the name), so its state lives
in the store (``StateStore.get_circuit`` / ``put_circuit``); the
engine's edge (``infra/engine/circuits.py``) reads it, asks these functions, and writes what they return
conditionally on the version it read, again on a lost race. Nothing here reads a clock or does I/O: the
edge passes ``now``.

CLOSED counts failed attempts within the window; ``failures`` of them open it. OPEN refuses every
attempt (the task fails with ``CircuitOpen``, without calling anything) until ``open_for`` has passed;
the first attempt after that takes the one trial (HALF_OPEN) and every other is refused while it runs.
The trial's success closes the breaker, its failure opens it again for ``open_for``. A trial that never
reports (its process died) is given up after ``open_for``, and the next attempt takes the trial.
Each attempt is one ``holder`` (run, item, attempt, epoch), so counting it again after a crash changes
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from .durations import parse_duration
from .plan import BreakerSpec

CIRCUIT_OPEN = "CircuitOpen"  # the error type of an attempt a breaker refused (retry and catch match on it)
MAX_FAILURES = 100  # the largest ``failures``: the breaker's record keeps one entry per counted failure


class CircuitState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitEvent(StrEnum):
    """A change of state worth telling (the run's history, the metrics)."""

    OPENED = "opened"  # CLOSED -> OPEN: ``failures`` failures within the window
    REOPENED = "reopened"  # HALF_OPEN -> OPEN: the trial failed
    CLOSED = "closed"  # HALF_OPEN -> CLOSED: the trial succeeded


@dataclass(frozen=True)
class Circuit:
    """A breaker as stored. Times are epoch milliseconds. ``version`` is the store's: 0 for a breaker never
    stored; each write stores ``version + 1``, on the condition that the stored one is still ``version``."""

    name: str
    state: CircuitState = CircuitState.CLOSED
    failures: tuple[tuple[int, str], ...] = ()  # (when, holder) of the failures counted, oldest first
    open_until: int = 0  # OPEN: when a trial may be let through
    trial: str = ""  # HALF_OPEN: the attempt let through
    trial_until: int = 0  # HALF_OPEN: when the trial is given up if it has not reported
    changed_at: int = 0  # when it last changed state
    version: int = 0

    def to_json(self) -> str:
        body = {"name": self.name, "state": self.state.value, "failures": [list(f) for f in self.failures],
                "open_until": self.open_until, "trial": self.trial, "trial_until": self.trial_until,
                "changed_at": self.changed_at}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, version: int) -> "Circuit":
        body: dict[str, Any] = json.loads(text)
        return cls(name=body["name"], state=CircuitState(body["state"]),
                   failures=tuple((int(at), str(holder)) for at, holder in body.get("failures", ())),
                   open_until=int(body.get("open_until", 0)), trial=str(body.get("trial", "")),
                   trial_until=int(body.get("trial_until", 0)), changed_at=int(body.get("changed_at", 0)),
                   version=version)


@dataclass(frozen=True)
class Admission:
    """May an attempt call its dependency? ``write``: the breaker to store first (a trial taken), else
    None; ``retry_at``: refused, when the breaker next lets a trial through (epoch ms)."""

    allowed: bool
    write: Circuit | None = None
    retry_at: int = 0


@dataclass(frozen=True)
class Verdict:
    """What a finished attempt does: ``write`` the breaker to store (None: nothing changes), ``event``
    the change of state it makes, if any."""

    write: Circuit | None = None
    event: CircuitEvent | None = None


def millis(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def shown_time(at: int) -> str:
    return datetime.fromtimestamp(at / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def holder_of(run_id: str, key: str, attempt: int, epoch: int) -> str:
    """One attempt of one task item, across crashes and redeliveries."""
    return f"{run_id}/{key}/{attempt}/{epoch}"


def admit(circuit: Circuit | None, spec: BreakerSpec, holder: str, now: datetime) -> Admission:
    at = millis(now)
    current = circuit or Circuit(spec.key)
    if current.state is CircuitState.CLOSED:
        return Admission(True)
    if current.state is CircuitState.OPEN:
        if at < current.open_until:
            return Admission(False, retry_at=current.open_until)
        return Admission(True, _trial(current, spec, holder, at))
    if current.trial == holder:  # the trial's own attempt, delivered again
        return Admission(True)
    if at < current.trial_until:
        return Admission(False, retry_at=current.trial_until)
    return Admission(True, _trial(current, spec, holder, at))  # the trial never reported: another one


def finished(circuit: Circuit | None, spec: BreakerSpec, holder: str, ok: bool, now: datetime) -> Verdict:
    """An attempt that was admitted ended: ``ok`` it succeeded, else it failed (not ``CircuitOpen``)."""
    at = millis(now)
    current = circuit or Circuit(spec.key)
    if current.state is CircuitState.HALF_OPEN and current.trial == holder:
        if ok:
            return Verdict(replace(current, state=CircuitState.CLOSED, failures=(), trial="", trial_until=0,
                                   open_until=0, changed_at=at), CircuitEvent.CLOSED)
        return Verdict(_opened(current, spec, at), CircuitEvent.REOPENED)
    if current.state is not CircuitState.CLOSED or ok:
        # A late attempt admitted before the breaker opened says nothing the breaker does not know; while
        # closed, a success leaves the failures in the window as they are (the window forgets them).
        return Verdict()
    since = at - int(spec.window * 1000)
    recent = tuple(f for f in current.failures if f[0] > since)
    if any(counted == holder for _, counted in recent):
        return Verdict()  # this attempt was counted before a crash
    recent = (recent + ((at, holder),))[-spec.failures:]
    if len(recent) >= spec.failures:
        return Verdict(_opened(current, spec, at), CircuitEvent.OPENED)
    return Verdict(replace(current, failures=recent))


def refusal_message(name: str, retry_at: int) -> str:
    return f"circuit breaker '{name}' is open: no attempt calls its dependency before {shown_time(retry_at)}"


def _trial(current: Circuit, spec: BreakerSpec, holder: str, at: int) -> Circuit:
    return replace(current, state=CircuitState.HALF_OPEN, trial=holder,
                   trial_until=at + int(spec.open_for * 1000), changed_at=at)


def _opened(current: Circuit, spec: BreakerSpec, at: int) -> Circuit:
    return replace(current, state=CircuitState.OPEN, failures=(), trial="", trial_until=0,
                   open_until=at + int(spec.open_for * 1000), changed_at=at)


def note_of_event(name: str, event: CircuitEvent) -> str:
    """How a change of state is written into the run's history (the outcome's reason) and read back
    for the metrics (``statemachine/metrics.py``): ``name:event``."""
    return f"{name}:{event.value}"


def event_of_note(text: str) -> tuple[str, CircuitEvent] | None:
    name, _, event = text.rpartition(":")
    try:
        return (name, CircuitEvent(event)) if name else None
    except ValueError:
        return None


NOT_CALLING = ("wait", "callback", "approval")  # task types that call no dependency: no breaker


def breaker_problems(tasks: list[tuple[tuple[Any, ...], str, dict[str, Any]]]) -> list[tuple[tuple[Any, ...], str]]:
    """(path, message) of each ``circuit_breaker`` the compiler refuses, given each task's (path, label, raw
    mapping): on a task type that calls nothing, or naming a breaker another task of the file names with
    other numbers (one breaker, one set of numbers)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    first: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for path, label, raw in tasks:
        given = raw.get("circuit_breaker")
        if not isinstance(given, dict):
            continue
        if raw.get("type") in NOT_CALLING:
            problems.append((path + ("circuit_breaker",), f"{label} is a {raw.get('type')} task, which calls no "
                             "dependency: a circuit breaker has nothing to hold back"))
            continue
        name = given.get("name")
        if not isinstance(name, str):
            continue
        numbers = (given.get("failures", 5), _seconds(given.get("window", 60.0)), _seconds(given.get("open_for", 30.0)))
        if name not in first:
            first[name] = (label, numbers)
        elif first[name][1] != numbers:
            problems.append((path + ("circuit_breaker", "name"),
                             f"circuit breaker '{name}' is given other failures, window or open_for than "
                             f"{first[name][0]} gives it: every task naming a breaker gives it the same numbers"))
    return problems


def _seconds(value: Any) -> Any:
    """A duration as seconds, to compare ``1m`` with ``60s``; what is not one stays as written (the model
    reports it)."""
    try:
        return parse_duration(value)
    except (TypeError, ValueError):
        return value
