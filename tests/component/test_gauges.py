"""The RunsInProgress gauge (docs/metrics.md): read from each store's run listing (memory, SQLite, DynamoDB
on moto: through the status index only, a page at a time), and GaugesFunction's handler printing it as EMF."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from infra import gauges, wiring
from infra.aws.dynamo_store import DynamoStore
from infra.gauges import in_progress_points
from statemachine.metrics import MetricName, MetricPoint, MetricUnit
from tests.component.test_history_metrics import Context
from tests.component.test_run_queries_contract import REGION, _run, _runs_table, stores  # noqa: F401


def _statuses(store) -> None:
    """Three RUNNING (two of alpha), one PAUSED, one COMPENSATING, and ended runs of every kind."""
    for i, (workflow, status) in enumerate([("alpha", "RUNNING"), ("alpha", "RUNNING"), ("beta", "RUNNING"),
                                            ("beta", "PAUSED"), ("alpha", "COMPENSATING"), ("alpha", "COMPLETED"),
                                            ("beta", "FAILED"), ("gamma", "CANCELLED")]):
        _run(store, f"r{i}", minute=i, workflow=workflow, status=status)


def gauge(count: float, status: str, workflow: str = "") -> MetricPoint:
    return MetricPoint(MetricName.RUNS_IN_PROGRESS, MetricUnit.COUNT, count, status, workflow)


def test_the_runs_in_progress_by_workflow_and_status_and_in_all(stores, monkeypatch):  # noqa: F811
    store, queries = stores
    _statuses(store)
    monkeypatch.setattr(gauges, "PAGE", 1)  # every run its own page: none skipped or counted twice
    assert in_progress_points(queries) == [
        gauge(1, "COMPENSATING", "alpha"), gauge(1, "PAUSED", "beta"), gauge(2, "RUNNING", "alpha"),
        gauge(1, "RUNNING", "beta"), gauge(3, "RUNNING"), gauge(1, "PAUSED"), gauge(1, "COMPENSATING")]


def test_no_run_in_progress_is_zero_in_every_status(stores):  # noqa: F811
    _, queries = stores
    assert in_progress_points(queries) == [gauge(0, "RUNNING"), gauge(0, "PAUSED"), gauge(0, "COMPENSATING")]


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "LOOPLINE_RUNS_TABLE": "runs",
                        "POWERTOOLS_METRICS_NAMESPACE": "LooplineTest", "POWERTOOLS_SERVICE_NAME": "loopline"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _runs_table(client, "runs")
        _statuses(DynamoStore(client, "runs", "defs", "tokens"))
        wiring.reset()
        from functions.gauges import app

        yield app.lambda_handler
        wiring.reset()


def test_the_gauges_function_prints_each_reading_once_as_emf(handler, capsys):
    context = Context(function_name="GaugesFunction",
                      invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:GaugesFunction")
    answer = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
    assert answer == {"RunsInProgress": {"RUNNING": 3, "PAUSED": 1, "COMPENSATING": 1}}
    seen = []
    for line in capsys.readouterr().out.splitlines():
        doc = json.loads(line)
        if "_aws" not in doc:
            continue  # the Logger's lines
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "LooplineTest"
        dims = {d: doc[d] for d in directive["Dimensions"][0] if d != "service"}
        seen += [(metric["Name"], tuple(sorted(dims.items())), sum(doc[metric["Name"]]))
                 for metric in directive["Metrics"]]
    # No status-only copy of a workflow's point (a reading's totals are points of their own): each series once.
    assert sorted(seen) == sorted([
        ("RunsInProgress", (("status", "COMPENSATING"), ("workflow", "alpha")), 1.0),
        ("RunsInProgress", (("status", "PAUSED"), ("workflow", "beta")), 1.0),
        ("RunsInProgress", (("status", "RUNNING"), ("workflow", "alpha")), 2.0),
        ("RunsInProgress", (("status", "RUNNING"), ("workflow", "beta")), 1.0),
        ("RunsInProgress", (("status", "RUNNING"),), 3.0),
        ("RunsInProgress", (("status", "PAUSED"),), 1.0),
        ("RunsInProgress", (("status", "COMPENSATING"),), 1.0)])
