"""Durations as written in workflow files, turned into seconds.

Accepted: a bare number (seconds; also as a numeric string), a number with a
unit (``500ms``, ``30s``, ``5m``, ``24h``, ``3d``, ``2w``, compounds such as
``1h30m``), and ISO 8601 durations (``PT1S``, ``P3D``, ``PT1H30M``,
``P1DT2H``, ``PT0.5S``). Years and months are refused: they have no fixed
length, and a timer must mean one thing.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d|w)")
_SHORT = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d|w)\s*)+")
_ISO = re.compile(
    r"P(?!$)(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)
_ISO_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(value: object) -> float:
    """Return ``value`` as a number of seconds, or raise ValueError saying why not."""
    if isinstance(value, bool):  # bool is an int in Python; `timeout: true` is a mistake
        raise ValueError(f"invalid duration {value!r}: expected a number of seconds or a string like '30s'")
    if isinstance(value, (int, float)):
        return _check(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected a number of seconds or a string like '30s'")
    text = value.strip()
    try:
        return _check(float(text), value)
    except ValueError as exc:
        if "negative" in str(exc) or "finite" in str(exc):
            raise
    if _SHORT.fullmatch(text):
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        return _check(total, value)
    iso = _ISO.fullmatch(text)
    if iso:
        if iso["years"] or iso["months"]:
            raise ValueError(f"invalid duration {value!r}: years and months have no fixed length; use days")
        total = sum(float(iso[k].replace(",", ".")) * mult for k, mult in _ISO_SECONDS.items() if iso[k])
        return _check(total, value)
    raise ValueError(
        f"invalid duration {value!r}: expected e.g. 500ms, 30s, 5m, 24h, 3d, a number of seconds, "
        "or ISO 8601 such as PT1H30M"
    )


def _check(seconds: float, original: object) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {original!r}: not finite")
    if seconds < 0:
        raise ValueError(f"invalid duration {original!r}: negative")
    return seconds
