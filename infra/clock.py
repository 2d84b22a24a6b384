"""Clocks (the engine never reads the wall clock directly) and ISO-8601 helpers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    """A clock tests (and `loopline dev --movable-clock`) move forward by hand.

    It starts at the real time and then advances only when told, so a 3-day
    approval timeout is reached with one ``advance(days=3)``.
    """

    def __init__(self, start: datetime | None = None, moved: Callable[[datetime], None] | None = None):
        """``moved``: told each new time, under the clock's lock (so a keeper sees them in order)."""
        self._now = start or utcnow()
        self._lock = threading.Lock()
        self._moved = moved

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, **kwargs)
            if self._moved is not None:
                self._moved(self._now)
            return self._now


def iso(moment: datetime) -> str:
    """``2030-01-02T03:04:05.678Z``: UTC, milliseconds (truncated)."""
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    if utc.year < 1000:  # strftime's %Y is not padded there: its text, as it always was
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    # Formatted by hand: a transition formats a dozen times, and strftime took most of that.
    return (f"{utc.year}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
            f".{utc.microsecond // 1000:03d}Z")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
