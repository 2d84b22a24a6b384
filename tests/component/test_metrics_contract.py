"""The Metrics port's contract, for both implementations: CloudWatch EMF (infra/aws/emf_metrics.py,
read back from what it prints) and the in-process Prometheus registry (loopline/memory/prometheus.py,
read back from its text). Each point emitted is seen once, by name, with its dimensions and value."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable

import pytest

from infra.aws.emf_metrics import EmfMetrics
from loopline.memory.prometheus import PrometheusRegistry, metric_name
from statemachine.metrics import MetricName, MetricPoint, MetricUnit

Seen = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (metric, dimensions) -> summed value
POINTS = [MetricPoint(MetricName.RUNS_STARTED, MetricUnit.COUNT, 1, "RUNNING", "wf"),
          MetricPoint(MetricName.RUNS_STARTED, MetricUnit.COUNT, 1, "RUNNING", "wf"),
          MetricPoint(MetricName.DEAD_LETTERS, MetricUnit.COUNT, 1, "FAILED"),
          MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, 2.5, "COMPLETED"),
          MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, 4.0, "FAILED", "wf", "python")]


def _emf(capsys: pytest.CaptureFixture[str]) -> tuple[EmfMetrics, Callable[[], Seen]]:
    def read() -> Seen:
        seen: Seen = defaultdict(float)
        for line in capsys.readouterr().out.splitlines():
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                # Powertools' own dimension; the status-only copies of labelled points are series of their own.
                dims = tuple(sorted((d, doc[d]) for d in directive["Dimensions"][0] if d != "service"))
                for metric in directive["Metrics"]:
                    seen[(metric["Name"], dims)] += sum(doc[metric["Name"]])
        return dict(seen)
    return EmfMetrics("ContractTest"), read


def _prometheus() -> tuple[PrometheusRegistry, Callable[[], Seen]]:
    registry = PrometheusRegistry()
    names = {metric_name(n, u): n.value for n in MetricName for u in MetricUnit}

    def read() -> Seen:
        seen: Seen = {}
        for line in registry.render().splitlines():
            found = re.match(r"^(\w+?)(_sum)?(?:\{(.*)\})? (\S+)$", line)
            if found and found.group(1) in names and (found.group(2) or found.group(1).endswith("_total")):
                dims = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', found.group(3) or "")))
                seen[(names[found.group(1)], dims)] = float(found.group(4))
        return seen
    return registry, read


@pytest.fixture(params=["emf", "prometheus"])
def port(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "loopline")
    return _emf(capsys) if request.param == "emf" else _prometheus()


def test_each_point_is_seen_once_with_its_dimensions(port):
    metrics, read = port
    metrics.emit(POINTS)
    seen = read()
    assert seen[("RunsStarted", (("status", "RUNNING"), ("workflow", "wf")))] == 2
    assert seen[("DeadLetters", (("status", "FAILED"),))] == 1
    assert seen[("TaskDuration", (("status", "COMPLETED"),))] == 2.5
    # A labelled task point: its workflow and task type are dimensions (labels) as its status is.
    assert seen[("TaskDuration", (("status", "FAILED"), ("task_type", "python"), ("workflow", "wf")))] == 4.0


def test_nothing_emitted_is_nothing_seen(port):
    metrics, read = port
    metrics.emit([])
    assert read() == {}
