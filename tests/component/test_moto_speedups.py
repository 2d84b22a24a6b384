"""loopline/embedded/moto_speedups.py: with it installed (EmbeddedAws installs it), moto's SQS answers
as before: a delayed message is neither received nor counted visible until its delay is over, a
message past its queue's retention period is not received, and moto's clock reads the same time."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def sqs(aws):
    client = aws.client("sqs")
    url = client.create_queue(QueueName="speedups")["QueueUrl"]
    return client, url


def _counts(client, url: str) -> tuple[int, int]:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_moto_clock_reads_the_time_it_read_before(aws):
    from moto.core import utils
    from moto.sqs import models

    assert models.unix_time_millis is not utils.unix_time_millis  # installed by EmbeddedAws
    assert abs(models.unix_time_millis() - utils.unix_time_millis()) < 50


def test_a_delayed_message_comes_only_once_its_delay_is_over(sqs):
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    client.send_message(QueueUrl=url, MessageBody="now")
    assert _counts(client, url) == (1, 1)
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in received] == ["now"]
    time.sleep(1.2)
    assert _counts(client, url) == (1, 0)
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in received] == ["later"]


def test_a_message_past_the_retention_period_is_not_received(sqs):
    from moto.sqs.models import sqs_backends

    client, url = sqs
    client.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    queue = sqs_backends["123456789012"]["us-east-1"].get_queue("speedups")
    client.send_message(QueueUrl=url, MessageBody="old")
    queue._messages[-1].sent_timestamp -= 61_000  # sent 61 s ago, as far as moto knows
    assert client.receive_message(QueueUrl=url).get("Messages", []) == []
    client.send_message(QueueUrl=url, MessageBody="recent")
    queue._messages[-1].sent_timestamp -= 59_000  # 59 s ago: still kept
    assert [m["Body"] for m in client.receive_message(QueueUrl=url)["Messages"]] == ["recent"]
