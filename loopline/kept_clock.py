"""`loopline dev --local --movable-clock` with a state directory: the moved clock outlives the process.

A movable clock stands still until moved (infra/clock.ManualClock). Its time is kept in the state
directory beside the runs it stamped, so a server started again on that directory reads the time
it stopped at, not the wall clock: timers set on the moved clock ("3 days from the moved now") stay
as far off as they were, and history keeps going forward. The file is replaced whole (write, then
rename), so a kill leaves the old time or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from infra.clock import ManualClock, parse_iso

FILE = "clock.json"


class ClockFileError(Exception):
    """The state directory's clock file cannot be read: the server refuses to start rather than guess."""


def kept_clock(state: Path) -> ManualClock:
    """A movable clock starting where the last one on ``state`` stopped (the wall clock the first time)."""
    path = state / FILE
    start = _read(path) if path.exists() else None
    clock = ManualClock(start, moved=lambda now: _write(path, now))
    if start is None:
        _write(path, clock.now())  # a restart resumes from here even if the clock is never moved
    return clock


def _read(path: Path) -> datetime:
    try:
        return parse_iso(json.loads(path.read_text(encoding="utf-8"))["now"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClockFileError(f"{path}: not a kept clock ({error}); remove it to start the clock at the "
                             "current time") from error


def _write(path: Path, now: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"now": now.isoformat()}), encoding="utf-8")  # to the microsecond
    os.replace(partial, path)
