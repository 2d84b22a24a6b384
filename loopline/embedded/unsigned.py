"""Requests to moto in-process go unsigned: signing them costs time and changes no answer.

botocore signs each request (SigV4: hashing the body, the canonical request and a key derived anew),
about a sixth of a PutItem's CPU, timed in a loop of PutItems on moto. moto checks no signature: it
reads a request's region from its URL (these services' URLs name it) and its account from the access
key in the signature; the embedded default's dummy key ("testing", account.LOCAL_ENV) and no key at
all both give moto's default account (no IAM user of moto owns either). S3 keeps signing: the task
runner's presigned URLs are checked by the S3 server. Not used with an emulator at an endpoint
(LocalStack), which may check signatures.
"""

from __future__ import annotations

from typing import Any

import botocore

UNSIGNED_SERVICES = ("dynamodb", "dynamodb-streams", "sqs", "scheduler")  # botocore's hyphenized service ids


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED


def sign_nothing(events: Any) -> None:
    """``events``: a botocore session's or client's event system; its requests to those services go unsigned."""
    for service in UNSIGNED_SERVICES:
        events.register(f"choose-signer.{service}", _unsigned)


def unsigned_client(client: Any) -> Any:
    """A client hook (infra.wiring.use_client_hook): the engine's clients sign nothing either."""
    sign_nothing(client.meta.events)
    return client
