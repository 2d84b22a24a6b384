"""Builds the engine a handler uses from its environment (the variables template.yaml sets).

On AWS every value comes from the function's environment. The local runtime
sets the same variables from the translated template and may install a
movable clock; it never replaces the adapters, so handlers run the same code.
"""

from __future__ import annotations

import os
import threading

import boto3
from botocore.config import Config

from .aws.dynamo_store import DynamoStore
from .aws.payloads import S3Payloads
from .aws.sqs_queue import MAX_DELAY, SqsQueue
from .aws.timers import AwsTimers
from .clock import SystemClock
from .engine import Engine, EngineSettings
from .links import LinkSigner
from .ports import Clock

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})
_lock = threading.Lock()
_engine: Engine | None = None
_clock: Clock | None = None
_sqs_max_delay: int = MAX_DELAY


def use_clock(clock: Clock, sqs_max_delay: int = MAX_DELAY) -> None:
    """Local runtime only: drive timers and leases by ``clock``."""
    global _clock, _sqs_max_delay, _engine
    with _lock:
        _clock, _sqs_max_delay, _engine = clock, sqs_max_delay, None


def reset() -> None:
    global _engine, _clock, _sqs_max_delay
    with _lock:
        _engine, _clock, _sqs_max_delay = None, None, MAX_DELAY


def exposed_env() -> dict[str, str]:
    names = [n.strip() for n in os.environ.get("LOOPLINE_EXPOSED_ENV", "").split(",") if n.strip()]
    return {name: os.environ[name] for name in names if name in os.environ}


def _client(service: str):
    endpoint = os.environ.get("LOOPLINE_AWS_ENDPOINT")  # LocalStack or another emulator, by configuration
    if not endpoint and os.environ.get("LOOPLINE_TARGET") == "localstack":
        import localstack_client.config

        endpoint = localstack_client.config.get_service_endpoint(service)
    # Throttling and 5xx answers are retried with backoff (botocore's standard mode) before an
    # error reaches the engine, which then leaves the message to SQS's redelivery.
    return boto3.client(service, endpoint_url=endpoint or None, config=_RETRIES)


def _link_key() -> bytes:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=_client("secretsmanager"))
    secret = provider.get(os.environ["LOOPLINE_LINK_KEY_SECRET"], max_age=300)
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def build_engine() -> Engine:
    env = os.environ
    clock = _clock or SystemClock()
    # The claim check: values over the item/message limits go to this bucket (template.yaml's PayloadBucket).
    bucket = env.get("LOOPLINE_PAYLOAD_BUCKET")
    payloads = S3Payloads(_client("s3"), bucket) if bucket else None
    queue = SqsQueue(_client("sqs"), env["LOOPLINE_READY_QUEUE_URL"], payloads)
    timers = AwsTimers(queue, _client("scheduler"), env["LOOPLINE_READY_QUEUE_ARN"], env["LOOPLINE_SCHEDULE_GROUP"],
                       env["LOOPLINE_SCHEDULER_ROLE_ARN"], clock, _sqs_max_delay)
    store = DynamoStore(_client("dynamodb"), env["LOOPLINE_RUNS_TABLE"], env["LOOPLINE_DEFINITIONS_TABLE"],
                        env["LOOPLINE_TOKENS_TABLE"], payloads)
    settings = EngineSettings(public_url=env.get("LOOPLINE_PUBLIC_URL", ""),
                              lease_seconds=float(env.get("LOOPLINE_LEASE_SECONDS", "60")), env=exposed_env(),
                              safety_delay_seconds=int(env.get("LOOPLINE_SAFETY_DELAY_SECONDS", "60")))
    return Engine(store, queue, timers, LinkSigner(_link_key()), clock, settings)


def get_engine() -> Engine:
    """The engine for this process, built once (a Lambda container reuses it across invocations)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = build_engine()
        return _engine


def use_engine(engine: Engine) -> None:
    """Local mode only: handlers drive an engine on in-memory adapters (no AWS, no emulator)."""
    global _engine
    with _lock:
        _engine = engine
