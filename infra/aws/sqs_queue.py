"""WorkQueue on SQS."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..ports import StoreError

MAX_DELAY = 900  # SQS DelaySeconds limit


class SqsQueue:
    def __init__(self, client, queue_url: str):
        self._sqs = client
        self.queue_url = queue_url

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps(message, separators=(",", ":")),
                DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY)),
            )
        except ClientError as error:
            raise StoreError(f"SQS SendMessage failed: {error}") from error
