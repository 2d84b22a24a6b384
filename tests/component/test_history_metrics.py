"""HistoryFunction emits each change's metric points as CloudWatch EMF: the handler, given a real
DynamoDB stream event (history, runs and definitions on moto), prints the EMF documents CloudWatch
reads; a task's points carry its run's workflow and its task type, read from the run and its plan."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from infra import wiring
from infra.aws.dynamo_store import DynamoStore
from infra.ports import RunRecord
from loopline.embedded.provision import DEFAULT_TEMPLATE, translate
from statemachine.history import image
from statemachine.state import LastChange
from tests.component.test_history_contract import REGION, TABLE, _create_table
from tests.component.test_store_contract import DEFINITIONS, RUNS, TOKENS, _create_tables
from tests.conftest import compile_yaml
from tests.e2e.test_history import CHAIN

T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:02.000Z"


@dataclass
class Context:
    function_name: str = "HistoryFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:HistoryFunction"
    aws_request_id: str = "req-1"


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "LOOPLINE_HISTORY_TABLE": TABLE,
                        "LOOPLINE_RUNS_TABLE": RUNS, "LOOPLINE_DEFINITIONS_TABLE": DEFINITIONS,
                        "POWERTOOLS_METRICS_NAMESPACE": "LooplineTest", "POWERTOOLS_SERVICE_NAME": "loopline"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        _create_tables(client)
        # The run r1 of the records below, as the engine stores it, and its plan (a, b, c: python tasks).
        store = DynamoStore(client, RUNS, DEFINITIONS, TOKENS)
        plan = compile_yaml(CHAIN)
        store.put_plan(plan.hash, plan.to_json())
        store.create_run(RunRecord(run_id="r1", plan_hash=plan.hash, workflow_id="orders", created_at=T0))
        wiring.reset()
        from functions.history import app

        yield app.lambda_handler
        wiring.reset()


def note(reason: str, kind: str = "message") -> LastChange:
    return LastChange(reason=reason, at=T1, cause_kind=kind, cause_name="exec", cause_subject="")


def record(seq: int, old, new) -> dict:
    return {"eventID": str(seq), "eventName": "MODIFY" if old else "INSERT", "eventSource": "aws:dynamodb",
            "awsRegion": REGION, "eventSourceARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/runs/stream/x",
            "dynamodb": {"Keys": {"pk": new["pk"], "sk": new["sk"]}, "SequenceNumber": str(seq),
                         "StreamViewType": "NEW_AND_OLD_IMAGES", **({"OldImage": old} if old else {}),
                         "NewImage": new}}


RUN = {"workflow_id": "orders", "created_at": T0}
STARTED = image("r1", "", "RUNNING", 0, note("started"), RUN)
FAILED = image("r1", "", "FAILED", 0, note("failed: Boom"), {**RUN, "ended_at": T1})
CLAIMED = image("r1", "b", "RUNNING", 1, note("attempt 1"), {"started_at": T0})
POISONED = image("r1", "b", "FAILED", 1, note("poison", kind="dead_letter"), {"started_at": T0, "ended_at": T1})
RETRIED = image("r1", "a", "RUNNING", 2, note("attempt 2"), {"started_at": T0})
ASKED = image("r1", "c", "WAITING", 1, note("asked"), {"started_at": T0, "waiting_for": "approval"})
DONE = image("r1", "a", "COMPLETED", 2, note("done"), {"started_at": T0, "ended_at": T1})


def emitted(text: str) -> list[dict]:
    """(name, unit, value, dimensions, namespace) of each EMF metric printed, the handler's own left out."""
    found = []
    for line in text.splitlines():
        doc = json.loads(line) if line.startswith("{") else {}
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                if not metric["Name"].startswith("History"):
                    found.append({"name": metric["Name"], "unit": metric["Unit"], "value": doc[metric["Name"]],
                                  "dimensions": {d: doc[d] for d in directive["Dimensions"][0]},
                                  "namespace": directive["Namespace"]})
    return found


def test_a_stream_batch_emits_its_metrics_as_emf(handler, capsys):
    event = {"Records": [record(1, None, STARTED), record(2, None, CLAIMED), record(3, CLAIMED, POISONED),
                         record(4, STARTED, FAILED)]}
    assert handler(event, Context()) == {"batchItemFailures": []}
    got = emitted(capsys.readouterr().out)
    assert {"name": "RunsStarted", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": {"workflow": "orders", "status": "RUNNING", "service": "loopline"}} in got
    # A task's points carry its run's workflow and its type (read from the run and its plan) ...
    labels = {"workflow": "orders", "task_type": "python", "status": "FAILED", "service": "loopline"}
    assert {"name": "DeadLetters", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": labels} in got
    assert {"name": "TaskDuration", "unit": "Seconds", "value": [2.0], "namespace": "LooplineTest",
            "dimensions": labels} in got
    assert {"name": "RunsFailed", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": {"workflow": "orders", "status": "FAILED", "service": "loopline"}} in got
    assert {"name": "RunDuration", "unit": "Seconds", "value": [2.0], "namespace": "LooplineTest",
            "dimensions": {"workflow": "orders", "status": "FAILED", "service": "loopline"}} in got
    # ... and every point comes again with its status only: the all-workflows series the alarms read.
    for name in ("RunsFailed", "DeadLetters", "TaskDuration"):
        assert [m["dimensions"] for m in got if m["name"] == name][1] == {"status": "FAILED", "service": "loopline"}
    assert len(got) == 10  # RunsStarted, RunsFailed, RunDuration, TaskDuration, DeadLetters: twice each


def test_the_alarms_and_the_dashboard_read_series_the_function_emits(handler, capsys):
    """CloudWatch keeps a metric per dimension set: each series the template reads must be one emitted."""
    event = {"Records": [record(1, None, STARTED), record(2, None, CLAIMED), record(3, CLAIMED, POISONED),
                         record(4, STARTED, FAILED), record(5, None, RETRIED), record(6, None, ASKED),
                         record(7, None, DONE)]}
    handler(event, Context())
    emitted_sets = {(m["name"], tuple(sorted(m["dimensions"].items()))) for m in emitted(capsys.readouterr().out)}
    resources = translate(DEFAULT_TEMPLATE, REGION)["Resources"]
    dead = resources["DeadLettersAlarm"]["Properties"]
    read = {(dead["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in dead["Dimensions"])))}
    for query in resources["RunFailureRateAlarm"]["Properties"]["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            read.add((metric["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))))
    body = resources["MetricsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for widget in json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]:
        for line in widget["properties"].get("metrics", []):
            pairs = [part for part in line[2:] if isinstance(part, str)]
            read.add((line[1], tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True)))))
    # What these records caused (no run completed or was cancelled here): each series read of it is emitted.
    caused = {(name, dict(dims)["status"]) for name, dims in emitted_sets}
    checked = {r for r in read if (r[0], dict(r[1])["status"]) in caused}
    assert {(name, dict(dims)["status"]) for name, dims in checked} >= {
        ("DeadLetters", "FAILED"), ("RunsFailed", "FAILED"), ("RunDuration", "FAILED"), ("TaskDuration", "FAILED"),
        ("TaskDuration", "COMPLETED"), ("TaskRetries", "RUNNING"), ("ApprovalsWaiting", "WAITING")}
    assert checked <= emitted_sets, checked - emitted_sets


def test_a_redelivered_record_emits_nothing_again(handler, capsys):
    event = {"Records": [record(1, None, STARTED)]}
    handler(event, Context())
    assert [m["name"] for m in emitted(capsys.readouterr().out)] == ["RunsStarted", "RunsStarted"]
    handler(event, Context())  # a retried batch: the entry is kept already
    assert emitted(capsys.readouterr().out) == []
