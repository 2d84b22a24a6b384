"""infra/aws/sqs_queue.py: JSON bodies, DelaySeconds clamped to SQS's 0..900, AWS errors as StoreError."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from infra.aws.sqs_queue import MAX_DELAY, SqsQueue
from infra.ports import StoreError

REGION = "us-east-1"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture
def queue_url(sqs) -> str:
    return sqs.create_queue(QueueName="loopline-ready")["QueueUrl"]


def _capture(sqs) -> list[dict]:
    sent: list[dict] = []
    sqs.meta.events.register("provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(dict(params)))
    return sent


def _receive(sqs, url: str) -> list[str]:
    reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [m["Body"] for m in reply.get("Messages", [])]


def test_send_puts_the_message_as_json(sqs, queue_url: str) -> None:
    message = {"k": "exec", "run": "run-1", "task": "t", "attempt": 1, "f": 1.5, "u": "日本 ✓", "n": None,
               "nested": {"list": [1, {"x": False}]}}
    SqsQueue(sqs, queue_url).send(message)
    [body] = _receive(sqs, queue_url)
    assert json.loads(body) == message
    assert body == json.dumps(message, separators=(",", ":"))  # compact


def test_send_without_delay_is_visible_at_once(sqs, queue_url: str) -> None:
    sent = _capture(sqs)
    queue = SqsQueue(sqs, queue_url)
    queue.send({"a": 1})
    queue.send({"b": 2}, 0)
    assert [p["DelaySeconds"] for p in sent] == [0, 0]
    assert sorted(_receive(sqs, queue_url)) == ['{"a":1}', '{"b":2}']


def test_delayed_message_is_not_visible_at_once(sqs, queue_url: str) -> None:
    SqsQueue(sqs, queue_url).send({"a": 1}, 30)
    assert _receive(sqs, queue_url) == []


@pytest.mark.parametrize("delay, sent", [
    (-100, 0), (-1, 0), (0, 0), (1, 1), (899, 899), (900, 900), (901, 900), (86400, 900), (10**9, 900),
])
def test_delay_seconds_is_clamped(sqs, queue_url: str, delay: int, sent: int) -> None:
    params = _capture(sqs)
    SqsQueue(sqs, queue_url).send({"d": delay}, delay)
    assert [p["DelaySeconds"] for p in params] == [sent]
    assert params[0]["QueueUrl"] == queue_url
    assert MAX_DELAY == 900


def test_client_error_becomes_store_error(sqs) -> None:
    url = sqs.create_queue(QueueName="gone")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(StoreError) as caught:
        SqsQueue(sqs, url).send({"a": 1})
    assert isinstance(caught.value.__cause__, ClientError)
    assert "SendMessage" in str(caught.value)


@pytest.mark.parametrize("code, status", [("AWS.SimpleQueueService.NonExistentQueue", 400),
                                          ("ThrottlingException", 400), ("InternalError", 500)])
def test_each_client_error_is_raised_from_the_original(code: str, status: int) -> None:
    client = boto3.client("sqs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stub:
        stub.add_client_error("send_message", service_error_code=code, http_status_code=status)
        with pytest.raises(StoreError) as caught:
            SqsQueue(client, "https://sqs.us-east-1.amazonaws.com/123456789012/q").send({"a": 1}, 5)
        stub.assert_no_pending_responses()
    cause = caught.value.__cause__
    assert isinstance(cause, ClientError)
    assert cause.response["Error"]["Code"] == code


def test_send_many_sends_ten_to_a_request(sqs, queue_url: str) -> None:
    batches: list[int] = []
    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch",
                             lambda params, **_: batches.append(len(params["Entries"])))
    SqsQueue(sqs, queue_url).send_many([{"n": i} for i in range(23)])
    assert batches == [10, 10, 3]
    received: list[str] = []
    while chunk := _receive(sqs, queue_url):
        received += chunk
    assert sorted(json.loads(body)["n"] for body in received) == list(range(23))


def test_send_many_reports_what_was_not_sent_as_a_store_error() -> None:
    client = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
    with Stubber(client) as stub:
        stub.add_response("send_message_batch", {
            "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "try again"}]})
        with pytest.raises(StoreError, match="1 of 2 not sent.*InternalError"):
            SqsQueue(client, url).send_many([{"a": 1}, {"b": 2}])
        stub.add_client_error("send_message_batch", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(StoreError) as caught:
            SqsQueue(client, url).send_many([{"a": 1}])
    assert isinstance(caught.value.__cause__, ClientError)
