"""boto3 clients for the AWS providers, built lazily and once per process per endpoint.

Where they go is the deployment's (:class:`infra.tasks.settings.AwsSettings`, as
infra/wiring.py's clients): ``LOOPLINE_AWS_ENDPOINT`` (LocalStack or another
emulator), or LocalStack's own endpoint when ``LOOPLINE_TARGET=localstack``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from .settings import AwsSettings

_lock = threading.Lock()
_clients: dict[tuple, Any] = {}
# A client of the service named at run time: the stubs type boto3.client per literal service name.
_new_client: Callable[..., Any] = boto3.client


def _endpoint(aws: AwsSettings, service: str) -> str | None:
    endpoint = aws.endpoint
    if not endpoint and aws.localstack:
        import localstack_client.config

        endpoint = localstack_client.config.get_service_endpoint(service)
    return endpoint or None


def client(aws: AwsSettings, service: str, region: str | None = None, read_timeout: float | None = None):
    region = region or aws.region
    endpoint = _endpoint(aws, service)
    key = (service, region, endpoint, read_timeout)
    with _lock:
        found = _clients.get(key)
        if found is None:
            config = Config(read_timeout=read_timeout, retries={"mode": "standard"}) if read_timeout else None
            found = _clients[key] = _new_client(service, region_name=region, endpoint_url=endpoint, config=config)
        return found


def reset() -> None:
    """Forget the cached clients (tests that start a fresh moto, or change the endpoint)."""
    with _lock:
        _clients.clear()
