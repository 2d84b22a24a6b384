"""HistoryFunction emits each change's metric points as CloudWatch EMF: the handler, given a real
DynamoDB stream event (history on moto), prints the EMF documents CloudWatch reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from infra import wiring
from statemachine.history import image
from statemachine.state import LastChange
from tests.component.test_history_contract import REGION, TABLE, _create_table

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
                        "POWERTOOLS_METRICS_NAMESPACE": "LooplineTest", "POWERTOOLS_SERVICE_NAME": "loopline"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        _create_table(boto3.client("dynamodb", region_name=REGION))
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
    assert {"name": "DeadLetters", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": {"status": "FAILED", "service": "loopline"}} in got
    assert {"name": "TaskDuration", "unit": "Seconds", "value": [2.0], "namespace": "LooplineTest",
            "dimensions": {"status": "FAILED", "service": "loopline"}} in got
    assert {"name": "RunsFailed", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": {"workflow": "orders", "status": "FAILED", "service": "loopline"}} in got
    assert {"name": "RunDuration", "unit": "Seconds", "value": [2.0], "namespace": "LooplineTest",
            "dimensions": {"workflow": "orders", "status": "FAILED", "service": "loopline"}} in got
    # The all-workflows series the template's alarms read: the run points again, without the workflow.
    assert {"name": "RunsFailed", "unit": "Count", "value": [1.0], "namespace": "LooplineTest",
            "dimensions": {"status": "FAILED", "service": "loopline"}} in got
    assert len(got) == 8  # RunsStarted, RunsFailed, RunDuration twice each; TaskDuration, DeadLetters


def test_a_redelivered_record_emits_nothing_again(handler, capsys):
    event = {"Records": [record(1, None, STARTED)]}
    handler(event, Context())
    assert [m["name"] for m in emitted(capsys.readouterr().out)] == ["RunsStarted", "RunsStarted"]
    handler(event, Context())  # a retried batch: the entry is kept already
    assert emitted(capsys.readouterr().out) == []
