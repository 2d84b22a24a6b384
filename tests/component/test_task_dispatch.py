"""The CodeDispatch port: the AWS adapter's Invoke (botocore's Stubber stands in for Lambda), its payload
bucket transfers (moto, and an S3 server over HTTP for the presigned URLs), and the in-memory adapter
giving the same destination record for the same job."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from infra.aws.task_dispatch import LambdaDispatch
from infra.clock import ManualClock
from infra.dispatch import runner
from infra.dispatch.jobs import INLINE_LIMIT, AttemptRef, CodeJob, CodeResult, new_token, token_hash
from infra.ports import StoreError
from infra.sandbox.request import CodeReply, CodeRequest
from infra.sandbox.settings import SandboxSettings
from loopline.memory.queue import InMemoryQueue
from loopline.memory.task_dispatch import InMemoryDispatch

REGION = "us-east-1"
FUNCTION = "loopline-TaskRunnerFunction"
BUCKET = "loopline-payloadbucket"
REF = AttemptRef("run-1", "plan-1", "t", "t", 1)


def request(size: int = 10) -> CodeRequest:
    return CodeRequest(kind="python", task_id="t", run_id="run-1", config={"code": "result = len(blob)"},
                       timeout=5.0, namespace={"blob": "x" * size})


@pytest.fixture
def s3_server():
    """moto in-process with an S3 server on its state, as the embedded runtime runs it."""
    from moto import mock_aws

    from loopline.embedded.runtime import _start_s3_server

    with mock_aws():
        server = _start_s3_server()
        try:
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
            yield server.url
        finally:
            server.stop()


def lambda_client():
    return boto3.client("lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_a_job_is_one_asynchronous_invoke_of_the_runner():
    client = lambda_client()
    job = CodeJob(REF, new_token(), request())
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202},
                          {"FunctionName": FUNCTION, "InvocationType": "Event",
                           "Payload": json.dumps(job.to_payload(), separators=(",", ":")).encode()})
        LambdaDispatch(client, FUNCTION).dispatch(job, 60)
        stub.assert_no_pending_responses()


def test_a_refused_invoke_is_a_store_error_raised_from_it():
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        with pytest.raises(StoreError) as raised:
            LambdaDispatch(client, FUNCTION).dispatch(CodeJob(REF, new_token(), request()), 60)
    assert raised.value.__cause__ is not None


def test_without_a_bucket_a_job_over_the_limit_is_refused_before_any_call():
    client = lambda_client()
    with Stubber(client):  # no response queued: any call would fail the test
        with pytest.raises(StoreError, match="no payload bucket"):
            LambdaDispatch(client, FUNCTION).dispatch(CodeJob(REF, new_token(), request(3 * INLINE_LIMIT)), 60)


def test_a_large_request_and_reply_go_through_one_object_each_by_presigned_url(s3_server):
    s3 = boto3.client("s3", region_name=REGION)
    presigner = boto3.client("s3", region_name=REGION, endpoint_url=s3_server,
                             config=Config(signature_version="s3v4"))
    client = lambda_client()
    job = CodeJob(REF, new_token(), request(2 * INLINE_LIMIT))
    sent = {}

    def record_payload(params, **_):
        sent.update(json.loads(params["Payload"]))

    client.meta.events.register("before-parameter-build.lambda.Invoke", record_payload)
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202})
        dispatch = LambdaDispatch(client, FUNCTION, s3, presigner, BUCKET)
        dispatch.dispatch(job, 120)
    prefix = f"runner/{token_hash(job.token)}/"
    assert "request" not in sent and sent["request_url"].startswith(s3_server + f"/{BUCKET}/{prefix}request?")
    assert sent["reply_url"].startswith(s3_server + f"/{BUCKET}/{prefix}reply?")
    assert "X-Amz-Expires=121" in sent["request_url"]  # they end with the lease
    # What the runner does with them (it has no credentials): fetch the request, run it, and put the reply
    # (its names hold the namespace's blob, over the limit too) where the worker reads it back.
    assert runner.run_job(sent, SandboxSettings()) == {"v": 1, "reply_uploaded": True}
    reply = CodeReply.from_json(dispatch.uploaded_reply(token_hash(job.token), 1 << 20))
    assert reply.output == 2 * INLINE_LIMIT and reply.error is None


def test_a_reply_over_the_limit_is_put_and_read_back_bounded(s3_server):
    s3 = boto3.client("s3", region_name=REGION)
    presigner = boto3.client("s3", region_name=REGION, endpoint_url=s3_server,
                             config=Config(signature_version="s3v4"))
    dispatch = LambdaDispatch(lambda_client(), FUNCTION, s3, presigner, BUCKET)
    token = new_token()
    url = presigner.generate_presigned_url("put_object", Params={
        "Bucket": BUCKET, "Key": f"runner/{token_hash(token)}/reply", "ContentType": "application/octet-stream"},
        ExpiresIn=60)
    big = CodeReply(output="y" * (2 * INLINE_LIMIT), printed="hi").to_json().encode()
    runner.put(url, big)
    assert dispatch.uploaded_reply(token_hash(token), len(big)) == big
    with pytest.raises(ValueError):
        dispatch.uploaded_reply(token_hash(token), len(big) - 1)
    with pytest.raises(LookupError):
        dispatch.uploaded_reply(token_hash(new_token()), len(big))


def test_the_in_memory_adapter_sends_the_record_lambda_would(monkeypatch):
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    results = InMemoryQueue(clock)
    job = CodeJob(REF, new_token(), request())
    InMemoryDispatch(results, clock, inline=True).dispatch(job, 60)
    result = CodeResult.from_record(results.receive_body())
    assert result == CodeResult(REF, job.token, reply=result.reply) and result.reply.output == 10

    def broken(payload):
        raise RuntimeError("the runner broke")

    InMemoryDispatch(results, clock, runner=broken, inline=True).dispatch(job, 60)
    failed = CodeResult.from_record(results.receive_body())
    assert failed.failure == {"type": "TaskRunnerError", "message": "the task runner failed: RuntimeError: "
                                                                    "the runner broke"}


def test_a_job_the_runner_cannot_read_fails_its_invocation():
    with pytest.raises(ValueError):
        # neither request nor URL
        runner.run_job({"v": 1, "token": "t" * 43, "attempt": REF.to_dict()}, SandboxSettings())


def test_a_job_that_waited_too_long_for_a_runner_slot_is_dropped_not_run():
    """Local mode's lease margin counts on it: a job not started within START_WITHIN never starts (as
    Lambda drops an invocation older than its maximum event age), so the watchdog's takeover at the
    lease's end never runs the same attempt's code twice."""
    import threading

    from loopline.memory.task_dispatch import LEASE_MARGIN, START_WITHIN

    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    results = InMemoryQueue(clock)
    started, release, ran = threading.Event(), threading.Event(), []

    def slow(payload):
        ran.append(payload["attempt"]["run"])
        started.set()
        release.wait(10)
        return {}

    dispatch = InMemoryDispatch(results, clock, runner=slow, workers=1)
    assert dispatch.lease_margin == LEASE_MARGIN > START_WITHIN
    dispatch.dispatch(CodeJob(REF, new_token(), request()), 60)  # takes the one slot
    assert started.wait(5)
    late = AttemptRef("run-late", "plan-1", "t", "t", 1)
    dispatch.dispatch(CodeJob(late, new_token(), request()), 60)  # waits for the slot ...
    on_time = AttemptRef("run-on-time", "plan-1", "t", "t", 1)
    clock.advance(START_WITHIN + 1)  # ... longer than a job may
    dispatch.dispatch(CodeJob(on_time, new_token(), request()), 60)
    release.set()
    for _ in range(100):
        if len(ran) == 2:
            break
        threading.Event().wait(0.05)
    threading.Event().wait(0.3)  # time enough for the late job to have run, were it not dropped
    assert ran == ["run-1", "run-on-time"]
