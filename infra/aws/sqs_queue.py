"""WorkQueue on SQS; a body over the SQS limit goes to S3 with a claim in the message."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..ports import Payloads, StoreError
from .claims import dump_message, load_message

MAX_DELAY = 900  # SQS DelaySeconds limit
# SQS takes up to 1 MiB a message (256 KiB before 2025, still the limit of many queues), but
# the worker gets 10 to a batch in one Lambda event of at most 6 MB: 250 KB keeps a batch well
# under it.
MAX_BODY = 250_000


class SqsQueue:
    def __init__(self, client, queue_url: str, payloads: Payloads | None = None):
        self._sqs = client
        self.queue_url = queue_url
        self._payloads = payloads

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=dump_message(message, self._payloads, MAX_BODY),
                DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY)),
            )
        except ClientError as error:
            raise StoreError(f"SQS SendMessage failed: {error}") from error

    def read(self, body: str) -> dict[str, Any]:
        return load_message(body, self._payloads)
