"""A stream batch's history entries kept in a few requests: ``History.append_all`` on every adapter,
DynamoDB's requests and its fallback to one put at a time (infra/aws/dynamo_batches.py), and
``HistoryRecorder.record_all`` stopping a batch at the first record not kept."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from infra.aws.dynamo_history import DynamoHistory
from infra.history import HistoryRecorder
from infra.ports import HistoryUnfinished, StoreError, TaskLabels
from loopline.memory.history import InMemoryHistory
from loopline.sqlite.db import Database
from loopline.sqlite.history import SQLiteHistory
from statemachine.events import Cause, CauseKind
from statemachine.history import EntryKind, HistoryEntry, Retention, RunSeen
from statemachine.metrics import MetricPoint
from tests.component.test_history_contract import _create_table
from tests.component.test_history_metrics import CLAIMED, DONE, RETRIED, STARTED, record

TABLE = "loopline-history"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        made = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(made)  # as template.yaml's HistoryTable
        yield made


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def history(request: pytest.FixtureRequest, tmp_path):
    makers = {"memory": InMemoryHistory, "sqlite": lambda: SQLiteHistory(Database(tmp_path / "state.db")),
              "dynamodb": lambda: DynamoHistory(request.getfixturevalue("client"), TABLE, Retention(30))}
    return makers[request.param]()


def entry(seq: int, run: str = "r1") -> HistoryEntry:
    return HistoryEntry(run, "2026-01-01T00:00:00.000Z", str(seq), EntryKind.TASK, "b", "RUNNING", None, 1,
                        f"change {seq}", Cause(CauseKind.MESSAGE, "exec", "b attempt 1"))


class Calls:
    """Counts a client's requests by operation, and answers the ones ``refuse`` picks with a
    ValidationException (what DynamoDB says of a request it will not take at all)."""

    def __init__(self, client, refuse=lambda operation, params: False):
        self.counts: Counter = Counter()
        self.refuse = refuse
        client.meta.events.register("before-call.dynamodb", self._before)

    def _before(self, model, params, **_):
        self.counts[model.name] += 1
        if self.refuse(model.name, json.loads(params["body"])):
            return SimpleNamespace(status_code=400), {
                "Error": {"Code": "ValidationException", "Message": "refused (injected)"}}
        return None


def test_each_entry_is_kept_once_and_said_new_once(history):
    history.append(entry(2))
    assert history.append_all([entry(1), entry(2), entry(3), entry(1), entry(4, run="r2")]) == [
        True, False, True, False, True]
    assert history.append_all([entry(1), entry(3)]) == [False, False]  # the batch delivered again
    assert [e.seq for e in history.of_run("r1").items] == ["1", "2", "3"]
    assert history.of_run("r1").items[0] == entry(1)  # every field kept
    assert history.append_all([]) == []


def test_dynamodb_reads_100_keys_and_writes_25_items_a_request(client):
    calls = Calls(client)
    history = DynamoHistory(client, TABLE, Retention(30))
    history.append(entry(0))
    calls.counts.clear()
    assert history.append_all([entry(seq) for seq in range(230)]) == [False] + [True] * 229
    assert calls.counts == {"BatchGetItem": 3, "BatchWriteItem": 10}  # 229 written: 9 of 25, 1 of 4
    assert len(history.of_run("r1", limit=500).items) == 230
    got = client.get_item(TableName=TABLE, Key={"pk": {"S": "RUN#r1"}, "sk": {"S": entry(7).sort_key}})["Item"]
    assert "ttl" in got  # written as the conditional put writes it


def test_a_refused_request_falls_back_to_one_put_at_a_time_and_stops_at_the_first_that_fails(client):
    bad = entry(30).sort_key

    def refuse(operation: str, params: dict) -> bool:
        return operation == "BatchWriteItem" or (operation == "PutItem" and params["Item"]["sk"]["S"] == bad)

    calls = Calls(client, refuse)
    history = DynamoHistory(client, TABLE, Retention(30))
    with pytest.raises(HistoryUnfinished) as raised:
        history.append_all([entry(seq) for seq in range(40)])
    assert raised.value.new == [True] * 30  # the entries before the refused one are kept
    assert calls.counts["PutItem"] == 31  # the first request's 25, then the second's up to the refused one
    assert [e.seq for e in history.of_run("r1", limit=500).items] == [str(s) for s in range(30)]


def test_entries_a_request_leaves_unprocessed_are_written_again(client, monkeypatch: pytest.MonkeyPatch):
    from infra.aws import dynamo_batches

    monkeypatch.setattr(dynamo_batches, "BACKOFF", 0.0)
    real, left = client.batch_write_item, []

    def leaves_the_last(**kwargs):  # DynamoDB's answer under throttling: some items not processed
        items = kwargs["RequestItems"][TABLE]
        if len(items) > 1 and not left:
            left.append(items[-1])
            reply = real(RequestItems={TABLE: items[:-1]})
            return {**reply, "UnprocessedItems": {TABLE: [items[-1]]}}
        return real(**kwargs)

    monkeypatch.setattr(client, "batch_write_item", leaves_the_last)
    history = DynamoHistory(client, TABLE, Retention(30))
    assert history.append_all([entry(seq) for seq in range(5)]) == [True] * 5
    assert left and len(history.of_run("r1").items) == 5


class Points:
    def __init__(self) -> None:
        self.points: list[MetricPoint] = []

    def emit(self, points: list[MetricPoint]) -> None:
        self.points += points


class Labels:
    def of(self, run_id: str, task_key: str) -> TaskLabels:
        return TaskLabels("orders", "python")

    def retention(self, run_id: str) -> float | None:
        return None  # the deployment's

    def saw(self, run: RunSeen) -> None:
        pass


def changes(*records: dict) -> list[dict]:
    return [r["dynamodb"] for r in records]


def test_a_batch_is_recorded_as_far_as_its_entries_are_kept(client):
    batch = changes(record(1, None, STARTED), record(2, None, CLAIMED), record(3, None, RETRIED),
                    record(4, RETRIED, DONE))
    refusing = {"on": True}
    bad: list[str] = []

    def refuse(operation: str, params: dict) -> bool:
        return refusing["on"] and (operation == "BatchWriteItem" or (
            operation == "PutItem" and params["Item"]["sk"]["S"] in bad))

    Calls(client, refuse)
    history, metrics = DynamoHistory(client, TABLE, Retention(30)), Points()
    recorder = HistoryRecorder(history, metrics, Labels())
    one_by_one, expected = InMemoryHistory(), Points()
    for change in batch:
        HistoryRecorder(one_by_one, expected, Labels()).record(change)
    bad.append(sorted(e.sort_key for e in one_by_one.of_run("r1").items)[2])  # the third record's: refused
    done = recorder.record_all(batch)
    assert (done.written, done.failed) == (2, 2)  # records 1 and 2 done; the batch comes again from the third
    names = Counter(p.name.value for p in metrics.points)
    assert names and names["TaskRetries"] == 0  # the third record's point: not emitted yet
    refusing["on"] = False
    again = recorder.record_all(batch[2:])
    assert (again.written, again.failed) == (2, None)
    assert recorder.record_all(batch).written == 0  # the whole batch once more: nothing new, nothing emitted
    assert [e.sort_key for e in history.of_run("r1").items] == [e.sort_key for e in one_by_one.of_run("r1").items]
    assert Counter(p.name.value for p in metrics.points) == Counter(p.name.value for p in expected.points)
    assert expected.points and "TaskRetries" in {p.name.value for p in expected.points}


class LabelsDown:
    """The look-up of a task's labels failing (its run's read refused): StoreError, as TaskContext says."""

    def of(self, run_id: str, task_key: str) -> TaskLabels:
        raise StoreError("DynamoDB get_item failed: throttled (injected)")

    def retention(self, run_id: str) -> float | None:
        return None

    def saw(self, run: RunSeen) -> None:
        pass


def test_a_record_that_cannot_be_labelled_stops_the_batch_there(history):
    metrics = Points()
    recorder = HistoryRecorder(history, metrics, LabelsDown())
    batch = changes(record(1, None, STARTED), record(2, None, RETRIED), record(3, None, CLAIMED))
    done = recorder.record_all(batch)
    assert (done.written, done.failed) == (1, 1)  # the run's start kept; a task's retry has a point to label
    assert [e.item for e in history.of_run("r1").items] == [""]
    assert [p.name.value for p in metrics.points] == ["RunsStarted"]
    again = HistoryRecorder(history, metrics, Labels()).record_all(batch[1:])
    assert (again.written, again.failed) == (2, None)
    assert [p.name.value for p in metrics.points] == ["RunsStarted", "TaskRetries"]
