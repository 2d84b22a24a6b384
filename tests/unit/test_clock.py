"""infra/clock.py: the ISO text every record and history entry carries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from infra.clock import iso, parse_iso


def strftime_iso(moment: datetime) -> str:
    """What iso() returned before it formatted by hand."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_iso_is_the_text_strftime_gave_for_any_moment_and_zone() -> None:
    draw = random.Random(12)
    zones = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    moments = [datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=timezone.utc),
               datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-1))),
               datetime(1, 1, 1, 0, 0, 0, 999, tzinfo=timezone.utc), datetime(999, 5, 6, tzinfo=timezone.utc),
               datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)]
    moments += [datetime(draw.randint(1000, 9998), draw.randint(1, 12), draw.randint(1, 28), draw.randint(0, 23),
                         draw.randint(0, 59), draw.randint(0, 59), draw.randint(0, 999999), tzinfo=draw.choice(zones))
                for _ in range(2000)]
    for moment in moments:
        assert iso(moment) == strftime_iso(moment), moment
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.678Z"
    assert parse_iso(iso(moments[0])) == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
