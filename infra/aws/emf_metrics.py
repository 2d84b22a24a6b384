"""Metric points as CloudWatch embedded metric format (EMF) lines, through Powertools.

Each point is its own EMF document (``single_metric``): points of one change have different
dimension sets (a run's carry its workflow, a task's its workflow and task type), and one document
holds one set. The Lambda's stdout is its log stream; CloudWatch turns each line into the metric.
Powertools adds the ``service`` dimension (POWERTOOLS_SERVICE_NAME). A point with a workflow or a
task type is emitted a second time with its status only: CloudWatch alarms need fixed dimensions,
so the template's alarms and dashboard read that all-workflows series (a metric per dimension set:
nothing is counted twice in either). A circuit breaker's point is emitted a third time with the
breaker's name only, for an alarm on one breaker.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from statemachine.metrics import GAUGES, MetricPoint


class EmfMetrics:
    def __init__(self, namespace: str):
        self.namespace = namespace

    def emit(self, points: list[MetricPoint]) -> None:
        for point in points:
            sets = [point.dimensions]
            if (point.workflow or point.task_type) and point.name not in GAUGES:
                # (a gauge's reading has its status-only points already: statemachine/gauges.py)
                sets.append({"status": point.status})
            if point.breaker:  # an alarm on one breaker, whichever workflow opened it
                sets.append({"breaker": point.breaker})
            for dimensions in sets:
                with single_metric(name=point.name.value, unit=MetricUnit(point.unit.value), value=point.value,
                                   namespace=self.namespace, default_dimensions=dimensions):
                    pass  # the document is printed when the block closes
