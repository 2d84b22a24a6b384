"""tests/concurrency.py's own checks: with ``linearizable_moto`` moto answers concurrent requests as
DynamoDB does (a conditional write is atomic), and a ``PausePoint`` stops exactly where it is told."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.concurrency import PausePoint, interleave, linearizable_moto, together

THREADS = 4
ROUNDS = 25


@pytest.fixture
def table(aws):
    db = aws.client("dynamodb")
    db.create_table(TableName="race", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    with linearizable_moto():
        yield [aws.client("dynamodb") for _ in range(THREADS)]  # clients are made here: creation is not thread-safe


def test_of_concurrent_conditional_puts_on_one_key_exactly_one_succeeds(table):
    for round_ in range(ROUNDS):
        def put(client, who):
            def call():
                try:
                    client.put_item(TableName="race", Item={"pk": {"S": f"k{round_}"}, "who": {"S": who}},
                                    ConditionExpression="attribute_not_exists(pk)")
                    return who
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
                    return None
            return call

        outcomes = together(*(put(client, str(i)) for i, client in enumerate(table)))
        winners = [o.get() for o in outcomes if o.get() is not None]
        assert len(winners) == 1, (round_, winners)
        stored = table[0].get_item(TableName="race", Key={"pk": {"S": f"k{round_}"}}, ConsistentRead=True)
        assert stored["Item"]["who"]["S"] == winners[0]  # the one that succeeded is the one stored


def test_concurrent_read_modify_writes_lose_no_update(table):
    def bump(client):
        def call():
            for _ in range(ROUNDS):
                client.update_item(TableName="race", Key={"pk": {"S": "counter"}}, UpdateExpression="ADD n :one",
                                   ExpressionAttributeValues={":one": {"N": "1"}})
        return call

    for outcome in together(*(bump(client) for client in table)):
        outcome.get()
    item = table[0].get_item(TableName="race", Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
    assert int(item["n"]["N"]) == THREADS * ROUNDS


def test_a_pause_point_stops_after_the_kth_call_while_another_thread_goes_on(aws):
    boto3.setup_default_session(region_name="us-east-1")
    point = PausePoint(boto3.DEFAULT_SESSION.events)
    client = boto3.client("dynamodb")  # after the registration: the client copies the session's handlers
    client.create_table(TableName="steps", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    order: list[str] = []
    lock = threading.Lock()

    def write(name, count):
        def call():
            for i in range(count):
                client.put_item(TableName="steps", Item={"pk": {"S": f"{name}{i}"}})
                with lock:
                    order.append(f"{name}{i}")
        return call

    with linearizable_moto():
        for at in range(1, 4):
            order.clear()
            first, second, stopped = interleave(point, write("a", 3), write("b", 2), at)
            first.get(), second.get()
            assert stopped
            # "a" stops right after its at-th call; its bookkeeping runs after the pause, hence the shift
            assert order == [f"a{i}" for i in range(at - 1)] + ["b0", "b1"] + [f"a{i}" for i in range(at - 1, 3)]
        _, _, stopped = interleave(point, write("c", 2), write("d", 1), 5)
        assert not stopped and point.calls == 2  # fewer calls than the pause point: ran to its end
    boto3.setup_default_session(region_name="us-east-1")
