"""Gauges: how many runs are in progress, as metric points (docs/metrics.md, RunsInProgress).

A gauge is read, not counted: the edge (``infra/gauges.py``) lists the runs in each status that is not
an end through the run listing's status index and hands their (status, workflow) here. Nothing is
kept between two readings, so the value can never drift from the store (a counter kept beside the
runs would, with every crash between a run's write and the counter's). Pure: no store, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .metrics import MetricName, MetricPoint, MetricUnit
from .status import RunStatus

# A run not ended: its flow runs, it is paused, or its compensations run.
IN_PROGRESS = (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.COMPENSATING)


def runs_in_progress(runs: Iterable[tuple[str, str]], totals: bool = True) -> list[MetricPoint]:
    """One point per (workflow, status) of the runs given as (status, workflow id), with how many;
    ``totals``: also one per status of IN_PROGRESS with the status only (0 when none), the series
    an alarm reads (an alarm needs fixed dimensions, and a status with no run still has a value)."""
    by_workflow = Counter((status, workflow) for status, workflow in runs if status in IN_PROGRESS)
    points = [MetricPoint(MetricName.RUNS_IN_PROGRESS, MetricUnit.COUNT, count, status, workflow)
              for (status, workflow), count in sorted(by_workflow.items())]
    if totals:
        by_status = Counter[str]()
        for (status, _), count in by_workflow.items():
            by_status[status] += count
        points += [MetricPoint(MetricName.RUNS_IN_PROGRESS, MetricUnit.COUNT, by_status[status], status)
                   for status in IN_PROGRESS]
    return points
