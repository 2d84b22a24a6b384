"""A run's history and the audit log on the embedded default, through the HTTP API as a user reads
them: the runs table's stream, polled as Lambda would, into HistoryFunction."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import boto3
import pytest

from infra.aws import dynamo_batches
from infra.aws.dynamo_history import DynamoHistory
from infra.ports import StoreError

CHAIN = """
workflow:
  metadata: {id: chain, version: 1.0.0}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "print('from b'); result = 2"}}
    - {id: c, type: python, depends_on: [b], config: {code: "result = 3"}}
"""

REVIEW = """
workflow:
  metadata: {id: review, version: 2.0.0}
  tasks:
    - id: ask
      type: approval
      config: {title: "Ship it?", approvers: [editor@example.com], timeout: 1h}
"""


def call(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "User-Agent": "history-test/1"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def api(runtime):
    runtime.start(http_port=0)
    return runtime.gateway.url


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def ended(api: str, run_id: str) -> dict:
    return wait_for(lambda: (lambda v: v if v["status"] in ("COMPLETED", "FAILED", "CANCELLED") else None)(
        call(api, "GET", f"/runs/{run_id}")[1]))


def history(api: str, run_id: str, final: str) -> list[dict]:
    """The run's whole history, once the stream has delivered its end (read page by page)."""
    def complete():
        entries, cursor = [], None
        while True:
            after = f"&cursor={quote(cursor)}" if cursor else ""
            status, page = call(api, "GET", f"/runs/{run_id}/history?limit=3{after}")
            assert status == 200, page
            entries += page["entries"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return entries if any(e["kind"] == "run" and e["status"] == final for e in entries) else None
    return wait_for(complete)


def stream_records(runtime) -> list[dict]:
    """Every record of the runs table's stream so far, read as the mapping reads them."""
    from loopline.embedded.streams import STREAMS_CONFIG

    streams = runtime.aws.client("dynamodbstreams", config=STREAMS_CONFIG)
    arn = runtime.stack.stream_sources[0].stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]


def test_the_history_shows_every_task_transition_in_order_with_its_cause(api, runtime):
    status, started = call(api, "POST", "/runs", {"workflow": CHAIN})
    assert status == 201
    run_id = started["run_id"]
    assert ended(api, run_id)["status"] == "COMPLETED"
    entries = history(api, run_id, "COMPLETED")
    keys = [(e["at"], e["seq"].zfill(40)) for e in entries]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # in order, each once
    assert (entries[0]["kind"], entries[0]["status"], entries[0]["reason"]) == ("run", "RUNNING", "started chain@1.0.0")
    # POST /runs sends the start message before it writes the run (docs/durability.md rule 5): the
    # worker may take the message and write the run first, and the entry then names the message.
    assert entries[0]["cause"] in ({"kind": "request", "name": "start", "subject": "chain"},
                                   {"kind": "message", "name": "start", "subject": run_id})
    assert (entries[-1]["kind"], entries[-1]["status"], entries[-1]["previous"]) == ("run", "COMPLETED", "RUNNING")
    for task in ("a", "b", "c"):
        own = [e for e in entries if e["item"] == task]
        assert [(e["status"], e["attempt"]) for e in own] == [("RUNNING", 1), ("COMPLETED", 1)], own
        assert own[1]["previous"] == "RUNNING"
        assert own[0]["cause"] == {"kind": "message", "name": "exec", "subject": f"{task} attempt 1"}
        assert own[1]["cause"]["kind"] == "result"  # the task runner's result, taken by the worker
    order = [e["item"] for e in entries if e["kind"] == "task" and e["status"] == "COMPLETED"]
    assert order == ["a", "b", "c"]
    # Retention: the finished run's item carries its TTL, 30 days (the default) after it ended.
    # (moto never deletes expired items: the attribute's value is what is checked.)
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=runtime.stack.physical["RunsTable"], Key={"pk": {"S": run_id}, "sk": {"S": "RUN"}})["Item"]
    assert int(item["ttl"]["N"]) == int(runtime.clock.now().timestamp()) + 30 * 86400  # the clock stood still


def test_the_audit_log_keeps_who_did_what_from_where_and_why(api, runtime):
    status, registered = call(api, "POST", "/workflows", {"workflow": REVIEW})
    assert status == 201
    _, first = call(api, "POST", "/runs", {"workflow": "review"})
    wait_for(lambda: call(api, "GET", "/approvals")[1]["approvals"])
    status, decided = call(api, "POST", f"/runs/{first['run_id']}/approvals/ask",
                           {"decision": "APPROVED", "approver": "editor@example.com"})
    assert status == 200, decided
    _, second = call(api, "POST", "/runs", {"workflow": "review"})
    status, cancelled = call(api, "POST", f"/runs/{second['run_id']}/cancel", {"reason": "wrong input"})
    assert status == 202, cancelled
    assert call(api, "POST", f"/runs/{second['run_id']}/cancel", {"reason": "again"})[0] == 409

    status, log = call(api, "GET", "/audit")
    assert status == 200
    # The test's clock stands still: entries of one millisecond are ordered by request id, not by arrival.
    actions = sorted((a["action"], a["outcome"]) for a in log["entries"])
    assert actions == [("cancel", 202), ("cancel", 409), ("decide", 200), ("register", 201), ("start", 201),
                       ("start", 201)]
    by = {(a["action"], a["outcome"], a["target"]): a for a in log["entries"]}
    register = by[("register", 201, "review@2.0.0")]
    assert ("start", 201, f"{first['run_id']} (review)") in by
    decide, cancel = by[("decide", 200, first["run_id"])], by[("cancel", 202, second["run_id"])]
    assert register["reason"] == f"hash {registered['hash']}"
    assert decide["reason"] == "APPROVED on ask for editor@example.com"
    assert cancel["reason"] == "wrong input"
    assert cancel["source_ip"] == "127.0.0.1" and cancel["user_agent"] == "history-test/1"
    assert cancel["actor"] and cancel["actor"] != "anonymous"  # the dev server's local user
    assert sorted(a["reason"] for a in call(api, "GET", "/audit?action=cancel")[1]["entries"]) == ["again",
                                                                                                "wrong input"]
    assert cancel in call(api, "GET", f"/audit?actor={quote(cancel['actor'])}&since={cancel['at']}")[1]["entries"]
    assert call(api, "GET", "/audit?actor=nobody")[1]["entries"] == []
    _, third = call(api, "POST", "/runs", {"workflow": "review"})
    assert call(api, "POST", f"/runs/{third['run_id']}/pause", {"reason": "maintenance"})[0] == 202
    assert call(api, "POST", f"/runs/{third['run_id']}/resume", {})[0] == 202
    assert call(api, "POST", f"/runs/{third['run_id']}/redrive")[0] == 409  # not FAILED: refused, and kept
    kept = {a["action"]: (a["target"], a["reason"], a["outcome"]) for a in call(api, "GET", "/audit")[1]["entries"]
            if a["target"] == third["run_id"]}
    assert kept == {"pause": (third["run_id"], "maintenance", 202), "resume": (third["run_id"], "", 202),
                    "redrive": (third["run_id"], "", 409)}
    # The cancel's reason is in the run's history too.
    entries = history(api, second["run_id"], "CANCELLED")
    assert any(e["reason"] == "stopping: Cancelled (wrong input)" and e["cause"]["name"] == "cancel" for e in entries)
    assert any(e["item"] == "ask" and e["status"] == "CANCELLED" for e in entries)


@pytest.mark.parametrize("path", [
    "/audit?action=delete", "/audit?since=yesterday", "/audit?since=2026-01-01T00:00:00", "/audit?limit=0",
    "/audit?limit=501", "/audit?limit=ten", "/audit?cursor=nonsense", "/runs/some-run/history?cursor=x%23y",
    "/runs/some-run/history?limit=-1",
])
def test_bad_parameters_are_json_400s(api, path):
    status, body = call(api, "GET", path)
    assert status == 400 and isinstance(body["error"], str)


def test_bad_reasons_and_unknown_runs(api):
    assert call(api, "GET", "/runs/no-such-run/history")[0] == 404
    assert call(api, "POST", "/runs/no-such-run/cancel", {"reason": 5})[0] == 400
    assert call(api, "POST", "/runs/no-such-run/cancel", {"reason": "x" * 1001})[0] == 400
    assert call(api, "POST", "/runs/no-such-run/cancel", {"reason": "gone"})[0] == 404


def test_a_stream_record_delivered_twice_adds_no_entry(api, runtime):
    from loopline.embedded.streams import _lambda_record

    _, started = call(api, "POST", "/runs", {"workflow": CHAIN})
    ended(api, started["run_id"])
    before = history(api, started["run_id"], "COMPLETED")
    arn = runtime.stack.stream_sources[0].stream_arn
    records = stream_records(runtime)
    assert len(records) > len(before)  # counters and sink counts are in the stream too
    reply = runtime.invoke("HistoryFunction", {"Records": [_lambda_record(r, arn) for r in records]})
    assert reply == {"batchItemFailures": []}
    assert call(api, "GET", f"/runs/{started['run_id']}/history?limit=500")[1]["entries"] == before


def test_the_consumer_failing_mid_batch_is_retried_without_loss(api, runtime, monkeypatch):
    """The batch's write request is refused, and the one-by-one puts it falls back to fail once at the
    fourth entry: the function reports that entry's record, the shard is delivered again from it, and
    nothing is lost or kept twice."""
    real, calls = DynamoHistory._put, []

    def flaky(self, item):
        calls.append(item["sk"]["S"])
        if len(calls) == 4:
            raise StoreError("DynamoDB put_item failed: throttled (injected)")
        return real(self, item)

    monkeypatch.setattr(dynamo_batches, "_write", lambda client, table, items: {dynamo_batches._key(i) for i in items})
    monkeypatch.setattr(DynamoHistory, "_put", flaky)
    _, started = call(api, "POST", "/runs", {"workflow": CHAIN})
    ended(api, started["run_id"])
    entries = history(api, started["run_id"], "COMPLETED")
    assert len(calls) > len(entries)  # the failed entry was put again
    assert calls[3] in [e["at"] + "#" + e["seq"].zfill(40) for e in entries]  # the failed one is kept
    assert [(e["item"], e["status"]) for e in entries if e["kind"] == "task"] == [
        ("a", "RUNNING"), ("a", "COMPLETED"), ("b", "RUNNING"), ("b", "COMPLETED"), ("c", "RUNNING"),
        ("c", "COMPLETED")]


def test_a_batch_of_records_is_kept_in_a_few_requests(api, runtime, monkeypatch):
    """A stream batch's entries: one read of which are there, then 25 to a write request; no put."""
    real_get, real_write, asked = DynamoHistory.append_all, dynamo_batches._write, []

    def counting(self, entries, retention=None):
        asked.append(len(entries))
        return real_get(self, entries, retention)

    def writes(client, table, items):
        asked.append(-len(items))
        return real_write(client, table, items)

    monkeypatch.setattr(DynamoHistory, "append_all", counting)
    monkeypatch.setattr(dynamo_batches, "_write", writes)
    real_put, put = DynamoHistory._put, []

    def one_by_one(self, item):
        put.append(item["pk"]["S"])
        return real_put(self, item)

    monkeypatch.setattr(DynamoHistory, "_put", one_by_one)
    _, started = call(api, "POST", "/runs", {"workflow": CHAIN})
    ended(api, started["run_id"])
    entries = history(api, started["run_id"], "COMPLETED")
    assert sum(n for n in asked if n > 0) == -sum(n for n in asked if n < 0) == len(entries)
    assert all(-25 <= n for n in asked)
    assert not [pk for pk in put if pk.startswith("RUN#")]  # the audit's actions are still put one by one


def test_a_record_failing_every_retry_goes_to_the_failure_queue_and_the_stream_moves_on(api, runtime, monkeypatch):
    """After MaximumRetryAttempts (10) the batch's location goes to HistoryFailureQueue, for an operator
    to replay, and the records after it are delivered: one broken record does not stop the history."""
    real_put, real_write = DynamoHistory._put, dynamo_batches._write
    poisoned: list[str] = []

    def refuses_one_run(self, item):
        if any(item["pk"]["S"] == f"RUN#{run_id}" for run_id in poisoned):
            raise StoreError("DynamoDB put_item failed: this run's entries are refused (injected)")
        return real_put(self, item)

    def refuses_a_request_with_one(client, table, items):
        if any(i["pk"]["S"] == f"RUN#{run_id}" for i in items for run_id in poisoned):
            return {dynamo_batches._key(i) for i in items}  # refused as a whole
        return real_write(client, table, items)

    monkeypatch.setattr(DynamoHistory, "_put", refuses_one_run)
    monkeypatch.setattr(dynamo_batches, "_write", refuses_a_request_with_one)
    _, bad = call(api, "POST", "/runs", {"workflow": CHAIN})
    poisoned.append(bad["run_id"])
    ended(api, bad["run_id"])
    sqs = runtime.aws.client("sqs")
    queue = runtime.stack.physical["HistoryFailureQueue"]
    message = wait_for(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages"))[0]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert info["streamArn"] == runtime.stack.stream_sources[0].stream_arn and info["batchSize"] >= 1
    assert int(info["startSequenceNumber"]) <= int(info["endSequenceNumber"])
    # Every record of the refused run given up on (the mapping is past the stream's last record), so
    # none of the next run's records can share a batch with them.
    last = stream_records(runtime)[-1]["dynamodb"]["SequenceNumber"]
    wait_for(lambda: last in runtime.aws.stream_checkpoints.values())
    _, good = call(api, "POST", "/runs", {"workflow": CHAIN})
    ended(api, good["run_id"])
    assert [e["status"] for e in history(api, good["run_id"], "COMPLETED") if e["kind"] == "run"] == [
        "RUNNING", "COMPLETED"]
