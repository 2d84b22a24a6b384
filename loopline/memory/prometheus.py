"""The local stand-in for CloudWatch metrics: an in-process registry, read as Prometheus text.

The history consumer (infra/history.py) feeds it the same metric points HistoryFunction emits as
EMF on AWS; `loopline dev` serves it at ``GET /metrics`` in the Prometheus text exposition format
(version 0.0.4). A count becomes a counter (``loopline_runs_started_total``), a duration a
histogram in seconds (``loopline_run_duration_seconds``), a gauge a gauge (``loopline_runs_in_progress``;
the points of one emit replace the last reading's, and ``read_gauges`` is called for a fresh reading at
each render, as a scrape reads them). It lives as long as the process.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable

from statemachine.metrics import GAUGES, MetricName, MetricPoint, MetricUnit

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "loopline_"
# Seconds: from a quick task to a day-long approval.
BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)
# Bytes: from a bare item to DynamoDB's 400 KB item limit.
BYTE_BUCKETS = (256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 409600.0)
_SUFFIX = {MetricUnit.COUNT: "_total", MetricUnit.SECONDS: "_seconds", MetricUnit.BYTES: "_bytes"}
Labels = tuple[tuple[str, str], ...]


def metric_name(name: MetricName, unit: MetricUnit) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.value).lower()
    if name in GAUGES:
        return PREFIX + snake
    return PREFIX + snake + _SUFFIX[unit]


def _buckets(unit: MetricUnit) -> tuple[float, ...]:
    return BYTE_BUCKETS if unit is MetricUnit.BYTES else BUCKETS


class PrometheusRegistry:
    def __init__(self, read_gauges: Callable[[], None] | None = None) -> None:
        """``read_gauges``: emits a fresh reading of the gauges into this registry; called at each render
        (the store's runs in progress: infra/gauges.py)."""
        self.read_gauges = read_gauges
        self._gauges: dict[MetricName, dict[Labels, float]] = {}
        self._lock = threading.Lock()  # the stream poller's thread writes, the gateway's reads
        self._counters: dict[MetricName, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        # Per label set: a count per bucket (cumulative when rendered), the sum and the count.
        self._histograms: dict[MetricName, dict[Labels, list[float]]] = defaultdict(dict)
        self._units: dict[MetricName, MetricUnit] = {}  # each histogram's unit: its name's suffix, its buckets

    def emit(self, points: list[MetricPoint]) -> None:
        with self._lock:
            for name in {point.name for point in points if point.name in GAUGES}:
                self._gauges[name] = {}  # a reading replaces the last: a series no longer read is gone
            for point in points:
                if point.name in GAUGES:
                    self._gauges[point.name][tuple(sorted(point.dimensions.items()))] = point.value
                    continue
                labels = tuple(sorted(point.dimensions.items()))
                if point.unit is MetricUnit.COUNT:
                    self._counters[point.name][labels] += point.value
                    continue
                bounds = _buckets(point.unit)
                self._units[point.name] = point.unit
                found = self._histograms[point.name].setdefault(labels, [0.0] * (len(bounds) + 2))
                found[next((i for i, bound in enumerate(bounds) if point.value <= bound), len(bounds))] += 1
                found[-1] += point.value

    def render(self) -> str:
        """The registry in the Prometheus text exposition format."""
        if self.read_gauges is not None:
            self.read_gauges()
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self._gauges.items()):
                full = metric_name(name, MetricUnit.COUNT)
                lines += [f"# HELP {full} {name.value} (a gauge)", f"# TYPE {full} gauge"]
                lines += [f"{full}{_labels(labels)} {_number(value)}" for labels, value in sorted(series.items())]
            for name, series in sorted(self._counters.items()):
                full = metric_name(name, MetricUnit.COUNT)
                lines += [f"# HELP {full} {name.value} (a count)", f"# TYPE {full} counter"]
                lines += [f"{full}{_labels(labels)} {_number(value)}" for labels, value in sorted(series.items())]
            for name, hist in sorted(self._histograms.items()):
                unit = self._units[name]
                full = metric_name(name, unit)
                lines += [f"# HELP {full} {name.value} ({unit.value.lower()})", f"# TYPE {full} histogram"]
                for labels, counts in sorted(hist.items()):
                    running = 0.0
                    for bound, count in zip((*_buckets(unit), float("inf")), counts[:-1]):
                        running += count
                        le = "+Inf" if bound == float("inf") else _number(bound)
                        lines.append(f"{full}_bucket{_labels((*labels, ('le', le)))} {_number(running)}")
                    lines.append(f"{full}_sum{_labels(labels)} {_number(counts[-1])}")
                    lines.append(f"{full}_count{_labels(labels)} {_number(running)}")
        return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    return "{" + ",".join(f'{key}="{_escaped(value)}"' for key, value in labels) + "}" if labels else ""


def _escaped(value: str) -> str:
    """A label value as the format asks: a workflow id is the user's text."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
