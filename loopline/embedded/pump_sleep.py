"""How long the local runtime's pump may sleep when a pass found nothing.

The doorbell (loopline/doorbell.py) hears what this process sends and answers. Two things it
cannot hear, which SQS does by itself on AWS: messages left undeleted come back when their
visibility timeout ends, and messages an earlier process left (a restarted `dev --aws-endpoint`,
a runtime started again in a test) come back or fall due at times this one was never told.
"""

from __future__ import annotations

import time
from typing import Any

from loopline.doorbell import Doorbell

# How often an idle pump looks while messages it did not see sent are in flight or delayed.
INHERITED_POLL_SECONDS = 1.0
_PENDING = ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds


class PumpSleep:
    def __init__(self, doorbell: Doorbell, sqs: Any, queue_urls: tuple[str, ...]):
        self.doorbell = doorbell
        self._sqs = sqs
        self._queue_urls = queue_urls
        self._attributes: dict[str, dict[str, str]] = {}
        # Looked at now, before this runtime sends anything: once it has, its own messages in flight
        # or delayed (each code task's watchdog waits its lease out in the ready queue) could not be
        # told from an earlier process's, and the pump would look every second for as long as code
        # tasks run. What is pending now has surfaced by the end of the longest delay or visibility
        # timeout at the latest; until then, or until the queues hold nothing pending, it looks.
        self._inherited_until = 0.0
        if self._queues_hold_unseen():
            longest = max([MAX_DELAY_SECONDS, *(int(self.attribute(url, "VisibilityTimeout")) for url in queue_urls)])
            self._inherited_until = time.monotonic() + longest

    def attribute(self, queue_url: str, name: str) -> str:
        """The queue's QueueArn or VisibilityTimeout (read once)."""
        if queue_url not in self._attributes:
            self._attributes[queue_url] = self._sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])["Attributes"]
        return self._attributes[queue_url][name]

    def comes_back(self, queue_url: str) -> None:
        """Messages left undeleted come back when their visibility timeout ends: look then. (One past
        its maxReceiveCount moves to the dead-letter queue on that receive; the DLQ's source comes
        last in template.yaml, so the same pass delivers it.)"""
        self.doorbell.ring_in(float(self.attribute(queue_url, "VisibilityTimeout")))

    def next_schedule(self, seconds: float | None) -> None:
        """The earliest pending schedule falls due in ``seconds`` (None: none pending, or a movable
        clock, which rings when moved); worked out again on every pass, so one slot."""
        if seconds is None:
            self.doorbell.clear_slot("schedules")
        else:
            self.doorbell.ring_in(seconds, slot="schedules")

    def sleep(self, longest: float | None = None) -> None:
        limit = self.doorbell.idle_limit if longest is None else min(longest, self.doorbell.idle_limit)
        if self._inherited_until:
            if time.monotonic() < self._inherited_until and self._queues_hold_unseen():
                limit = min(limit, INHERITED_POLL_SECONDS)
            else:
                self._inherited_until = 0.0  # from now on every message is one this runtime saw
        self.doorbell.sleep(limit)

    def _queues_hold_unseen(self) -> bool:
        for url in self._queue_urls:
            counts = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_PENDING)["Attributes"]
            if any(int(counts.get(name, 0)) for name in _PENDING):
                return True
        return False
