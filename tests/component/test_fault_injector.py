"""The transient-fault injector (tests/faults.py) against moto: a faulted request never reaches
moto, each service's faults parse as that service's errors, and botocore's standard retry mode
retries them, writing exactly once."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.faults import FAULTS, Burst, Fault, FaultInjector, fast_backoff

NO_RETRY = Config(retries={"total_max_attempts": 1})
ENGINE_RETRY = Config(retries={"mode": "standard", "max_attempts": 8})  # as infra/wiring.py builds clients


@pytest.fixture
def session():
    with mock_aws(), fast_backoff() as delays:
        session = boto3.session.Session(region_name="us-east-1")
        session.delays = delays
        yield session


@pytest.fixture
def injector(session):
    return FaultInjector().attach(session.events)


def make_table(session) -> str:
    session.client("dynamodb").create_table(
        TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return "t"


def item(session, table, key):
    return session.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


def test_a_faulted_put_item_never_reaches_moto(session, injector):
    table = make_table(session)
    db = session.client("dynamodb", config=NO_RETRY)
    injector.plan = Burst("dynamodb", 1, "PutItem")
    with pytest.raises(ClientError) as raised:
        db.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert item(session, table, "a") is None  # answered with the fault and not applied, as DynamoDB does


def test_the_retry_after_faults_writes_exactly_once(session, injector):
    table = make_table(session)
    db = session.client("dynamodb", config=ENGINE_RETRY)
    injector.plan = Burst("dynamodb", 3, "UpdateItem")
    reply = db.update_item(TableName=table, Key={"pk": {"S": "a"}}, UpdateExpression="ADD n :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})
    assert reply["ResponseMetadata"]["RetryAttempts"] == 3
    assert item(session, table, "a")["n"] == {"N": "1"}  # had a faulted attempt been applied: 2, 3 or 4
    # A conditional put fails on a second application: the faulted attempts left nothing behind.
    injector.plan = Burst("dynamodb", 2, "PutItem")
    db.put_item(TableName=table, Item={"pk": {"S": "b"}}, ConditionExpression="attribute_not_exists(pk)")
    assert item(session, table, "b") == {"pk": {"S": "b"}}
    assert [(op, attempt) for _, op, attempt, _ in injector.log] == [
        ("UpdateItem", 1), ("UpdateItem", 2), ("UpdateItem", 3), ("PutItem", 1), ("PutItem", 2)]
    assert injector.retries["dynamodb"] == 5 and len(session.delays) == 5  # backoff computed, not slept


def test_a_hook_that_only_answers_first_does_not_stop_moto(session):
    """Why the injector redirects the request: botocore emits before-send to every handler and
    takes the first answer afterwards, so moto's stubber still applies the write."""
    table = make_table(session)
    naive = []

    def answer_first(request, **_):
        naive.append(request)
        from tests.faults import error_response

        return error_response(request, Fault(400, "ProvisionedThroughputExceededException"), "json")

    session.events.register_first("before-send.dynamodb.PutItem", answer_first)
    db = session.client("dynamodb", config=NO_RETRY)
    with pytest.raises(ClientError):
        db.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert naive and item(session, table, "a") == {"pk": {"S": "a"}}  # both applied and "throttled"


def prepare(session, service: str) -> str | None:
    """The resources the call below needs, made without faults (the queue's URL for SQS)."""
    if service == "dynamodb":
        make_table(session)
    elif service == "sqs":
        return session.client("sqs").create_queue(QueueName="q")["QueueUrl"]
    elif service == "secrets-manager":
        session.client("secretsmanager").create_secret(Name="s", SecretString="v")
    elif service == "s3":
        session.client("s3").create_bucket(Bucket="bucket")
    return None


def call(session, service: str, config: Config, queue_url: str | None):
    """One call per service (a write where the service has one cheaply)."""
    client = session.client({"secrets-manager": "secretsmanager"}.get(service, service), config=config)
    if service == "dynamodb":
        return client.put_item(TableName="t", Item={"pk": {"S": "x"}})
    if service == "sqs":
        return client.send_message(QueueUrl=queue_url, MessageBody="m")
    if service == "scheduler":
        return client.list_schedules()
    if service == "secrets-manager":
        return client.get_secret_value(SecretId="s")
    return client.put_object(Bucket="bucket", Key="k", Body=b"data")


CASES = [(service, fault) for service, faults in FAULTS.items() for fault in faults]


@pytest.mark.parametrize(("service", "fault"), CASES, ids=[f"{s}-{f.code}-{f.status}" for s, f in CASES])
def test_each_fault_parses_in_its_service_protocol_and_is_retried(session, injector, service, fault):
    queue_url = prepare(session, service)
    injector.plan = lambda s, _op, _n: fault if s == service else False
    with pytest.raises(ClientError) as raised:
        call(session, service, NO_RETRY, queue_url)
    error = raised.value.response
    assert error["Error"]["Code"] == fault.code
    assert error["ResponseMetadata"]["HTTPStatusCode"] == fault.status

    injector.plan = Burst(service, 1)
    reply = call(session, service, ENGINE_RETRY, queue_url)
    assert reply["ResponseMetadata"]["RetryAttempts"] == 1  # standard mode classified it as retryable
    assert injector.faults[service] == 2 and injector.retries[service] == 1


def test_more_faults_than_attempts_reach_the_caller(session, injector):
    table = make_table(session)
    db = session.client("dynamodb", config=ENGINE_RETRY)
    injector.plan = Burst("dynamodb", 10)
    with pytest.raises(ClientError) as raised:
        db.put_item(TableName=table, Item={"pk": {"S": "a"}})
    # max_attempts 8 in the client config means 8 retries: 9 attempts in all.
    assert [attempt for *_, attempt, _ in injector.log] == list(range(1, 10))
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 8
    assert item(session, table, "a") is None
    db.put_item(TableName=table, Item={"pk": {"S": "a"}})  # the 10th fault, then through
    assert injector.faults["dynamodb"] == 10 and item(session, table, "a") == {"pk": {"S": "a"}}
