"""Two of moto's SQS costs that grow with every message a queue holds, cut without changing an answer.

A queue of the embedded default holds each code task's watchdog, an exec message delayed for the
task's timeout + 90 s (infra/engine/code_tasks.py), so after a burst of code tasks it holds hundreds
of delayed messages. moto 5 then pays for each of them on every request:

- ``SendMessage`` reads ``queue.attributes`` (for ContentBasedDeduplication), and each received
  message's retention check reads ``get_queue_attributes(["MessageRetentionPeriod"])``, which builds
  ``queue.attributes`` three times; building it counts the queue's visible, delayed and in-flight
  messages, one scan each. So a ReceiveMessage scans the queue about ten times over.
- each scan asks every message ``visible`` and ``delayed``, and each asks the time through two
  naive datetimes (``moto.core.utils.unix_time_millis``), about 1 µs apiece.

Measured with ``bench/profile_transition.py --prefill 20`` (200 delayed messages in the ready queue),
these were a third of moto's time per transition. Here the retention check reads the one attribute
it needs, and moto's SQS models ask the time of ``time.time()`` (the same instant, as a float of
milliseconds since the epoch, as moto's own computes it from ``datetime.now(UTC)``). Installed once
per process (EmbeddedAws); both stand as moto behaves, only cheaper, so they are not taken back.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from .moto_patching import install_once


def install_sqs_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.core import utils
    from moto.sqs import models

    original_millis = utils.unix_time_millis

    def unix_time_millis(dt: datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else original_millis(dt)

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > time.time()

    models.unix_time_millis = unix_time_millis  # the name moto.sqs.models calls
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
