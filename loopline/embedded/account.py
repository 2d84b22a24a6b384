"""The emulated AWS account of the embedded default: moto in-process with template.yaml's stack in it.

``EmbeddedAws`` (the "cloud") outlives a ``LocalRuntime`` (the "Lambda side", runtime.py), so a test
can kill and restart the latter; it keeps what the service keeps (its state, where each stream's
event source mapping stands).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

from .concurrency import install_linearizable_moto, uninstall_linearizable_moto
from .moto_attribute_values import install_attribute_value_speedups
from .moto_condition_expressions import install_condition_expression_speedups
from .moto_dispatch import install_dispatch_speedups
from .moto_item_size import install_item_size_speedups
from .moto_queries import install_query_speedups
from .moto_speedups import install_sqs_speedups
from .moto_update_expressions import install_update_expression_speedups
from .provision import Stack, provision
from .startup_heap import freeze_startup_heap
from .unsigned import sign_nothing

REGION = "us-east-1"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# Quiet, local-friendly Powertools settings; the handlers themselves are unchanged.
LOCAL_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_DEV": "false",
}


def endpoint_from_env() -> str | None:
    """LOOPLINE_AWS_ENDPOINT, or LocalStack's endpoint when LOOPLINE_TARGET=localstack; None means moto."""
    endpoint = os.environ.get("LOOPLINE_AWS_ENDPOINT")
    if not endpoint and os.environ.get("LOOPLINE_TARGET") == "localstack":
        import localstack_client.config

        endpoint = localstack_client.config.get_service_endpoint("sqs")
    return endpoint or None


class EmbeddedAws:
    """moto started in-process with the stack of template.yaml created in it."""

    def __init__(self, template: Path = TEMPLATE, parameters: dict[str, str] | None = None,
                 public_url: str | None = None, redelivery_seconds: int | None = None):
        # A configured endpoint (LocalStack, or another emulator) replaces moto; nothing else changes.
        self.endpoint_url = endpoint_from_env()
        if self.endpoint_url is None:
            os.environ.update(LOCAL_ENV)  # dummy credentials: nothing can reach a real account
        else:
            os.environ.update({k: v for k, v in LOCAL_ENV.items() if k not in os.environ or k.startswith("POWERTOOLS")})
        # Where each stream's event source mapping stands (loopline/embedded/streams.py): the service's
        # state, kept across runtimes as AWS keeps it across function restarts.
        self.stream_checkpoints: dict[str, str] = {}
        self._mock = None
        if self.endpoint_url is None:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()
            install_linearizable_moto()  # each request atomic, so functions can run side by side
            install_sqs_speedups()  # a queue's delayed watchdogs would slow every SQS request (moto_speedups.py)
            # moto parses each update and condition expression anew, and walks every item it answers with.
            install_update_expression_speedups()  # moto_update_expressions.py
            install_condition_expression_speedups()  # moto_condition_expressions.py
            install_attribute_value_speedups()  # moto_attribute_values.py
            install_dispatch_speedups()  # and lists a class's methods to find each request's handler
            install_query_speedups()  # and sorts the whole table for each Query of one partition (moto_queries.py)
            install_item_size_speedups()  # and sums an item's size anew at each attribute (moto_item_size.py)
        # The task runner reaches the payload bucket by presigned URL, over HTTP: an S3 server on
        # moto's state (the same backends) stands in for S3's endpoint.
        self.s3_endpoint: str | None = None
        self._s3_server = None
        if self.endpoint_url is None:
            self._s3_server = _start_s3_server()
            self.s3_endpoint = self._s3_server.url
        self.session = _session(os.environ.get("AWS_DEFAULT_REGION", REGION))
        if self.endpoint_url is None:
            sign_nothing(self.session.events)  # moto checks no signature (unsigned.py)
        # This machine's setting is the stack's, as `sam deploy --parameter-overrides` would make it.
        parameters = {"CustomModules": os.environ.get("LOOPLINE_CUSTOM_MODULES", ""), **(parameters or {})}
        self.stack: Stack = provision(self.session, template, parameters=parameters, public_url=public_url,
                                      endpoint_url=self.endpoint_url)
        if redelivery_seconds is not None:
            self._shorten_redelivery(redelivery_seconds)
        if self.endpoint_url is None:  # the embedded default signs links with the local key file's key
            from .keyfile import local_link_key

            self.client("secretsmanager").put_secret_value(SecretId=self.stack.physical["LinkKeySecret"],
                                                          SecretString=local_link_key())
        freeze_startup_heap()  # the first stack's process: full collections stop walking it (startup_heap.py)

    def _shorten_redelivery(self, seconds: int) -> None:
        """Tests only: a crashed delivery comes back after ``seconds`` instead of the template's
        visibility timeout (whose floor of 30 s Lambda needs on AWS). The lease follows it."""
        sqs = self.client("sqs")
        for source in self.stack.queue_sources:
            sqs.set_queue_attributes(QueueUrl=source.queue_url, Attributes={"VisibilityTimeout": str(seconds)})
        for spec in self.stack.functions.values():
            spec.environment["LOOPLINE_LEASE_SECONDS"] = str(seconds)

    def client(self, service: str, config=None):
        return self.session.client(service, endpoint_url=self.endpoint_url, config=config)

    def stop(self) -> None:
        if self._s3_server is not None:
            self._s3_server.stop()
            self._s3_server = None
        if self._mock is not None:
            self._mock.stop()
            uninstall_linearizable_moto()
            self._mock = None


_loader: Any = None


def _session(region: str) -> boto3.session.Session:
    """A new session whose clients read the service models once per process: each botocore session
    loads them anew (about 0.4 s for a stack's clients), and tests start a fresh stack each."""
    global _loader
    session = boto3.session.Session(region_name=region)
    if _loader is None:
        _loader = session._session.get_component("data_loader")
    else:
        session._session.register_component("data_loader", _loader)
    return session


def _start_s3_server():
    from .moto_server import GuardedMotoServer

    return GuardedMotoServer().start()
