"""loopline/embedded/moto_dispatch.py and unsigned.py: moto finds the same handler method for every
action name, and the embedded default's requests to moto go unsigned (but S3's), answered as before."""

from __future__ import annotations

import importlib

import pytest

RESPONSE_CLASSES = [("moto.dynamodb.responses", "DynamoHandler"),
                    ("moto.dynamodbstreams.responses", "DynamoDBStreamsHandler"),
                    ("moto.sqs.responses", "SQSResponse"), ("moto.scheduler.responses", "EventBridgeSchedulerResponse"),
                    ("moto.secretsmanager.responses", "SecretsManagerResponse"), ("moto.s3.responses", "S3Response"),
                    ("moto.awslambda.responses", "LambdaResponse")]


@pytest.mark.parametrize(("module", "name"), RESPONSE_CLASSES)
def test_every_name_is_a_handler_method_exactly_when_moto_lists_it(module, name):
    from moto.core.utils import method_names_from_class

    from loopline.embedded.moto_dispatch import MethodNames

    clazz = getattr(importlib.import_module(module), name)
    listed = set(method_names_from_class(clazz))
    assert listed  # the comparison below covers methods, not only names that are none
    for candidate in [*dir(clazz), "no_such_action", "", "dynamodb_backend", "__class__"]:
        assert (candidate in MethodNames(clazz)) == (candidate in listed), candidate


def test_the_embedded_default_finds_handlers_without_listing_methods(aws):
    from moto.core import responses

    from loopline.embedded.moto_dispatch import MethodNames

    assert responses.method_names_from_class is MethodNames  # installed by EmbeddedAws
    assert aws.client("dynamodb").list_tables()["TableNames"]


def test_requests_to_moto_go_unsigned_but_those_to_s3(aws):
    from infra import wiring
    from loopline.embedded.runtime import LocalRuntime

    runtime = LocalRuntime(aws)
    try:
        seen: dict[str, str | None] = {}

        def noting(service):
            def note(request, **_):
                value = request.headers.get("Authorization")
                seen[service] = value.decode() if isinstance(value, bytes) else value
            return note

        engine_db = wiring._client("dynamodb")  # as the engine makes its clients
        own_sqs = aws.client("sqs")  # as the runtime makes its own
        s3 = aws.client("s3")
        for service, client in (("dynamodb", engine_db), ("sqs", own_sqs), ("s3", s3)):
            client.meta.events.register("before-send", noting(service))  # every before-send handler sees it
        assert engine_db.describe_table(TableName=aws.stack.physical["RunsTable"])["Table"]["TableStatus"]
        assert own_sqs.list_queues()["QueueUrls"]
        s3.list_buckets()
        assert seen["dynamodb"] is None and seen["sqs"] is None
        assert seen["s3"] is not None and seen["s3"].startswith("AWS4-HMAC-SHA256")
    finally:
        runtime.stop()
