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
BATCH_SIZE = 10  # SendMessageBatch's limit
BATCH_BYTES = 250_000  # a batch's bodies together: under the 256 KiB many queues still have


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

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """SendMessageBatch, ten (and at most BATCH_BYTES) to a request: the ready tasks of a fan-out."""
        batch: list[str] = []
        size = 0
        for message in messages:
            body = dump_message(message, self._payloads, MAX_BODY)
            if batch and (len(batch) == BATCH_SIZE or size + len(body.encode()) > BATCH_BYTES):
                self._send_batch(batch)
                batch, size = [], 0
            batch.append(body)
            size += len(body.encode())
        if batch:
            self._send_batch(batch)

    def _send_batch(self, bodies: list[str]) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        try:
            reply = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except ClientError as error:
            raise StoreError(f"SQS SendMessageBatch failed: {error}") from error
        failed = reply.get("Failed") or []
        if failed:
            first = failed[0]
            raise StoreError(f"SQS SendMessageBatch: {len(failed)} of {len(bodies)} not sent "
                             f"({first.get('Code')}: {first.get('Message')})")

    def read(self, body: str) -> dict[str, Any]:
        return load_message(body, self._payloads)
