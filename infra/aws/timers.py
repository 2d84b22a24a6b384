"""Durable timers: SQS DelaySeconds up to 15 minutes, a one-time EventBridge Scheduler schedule beyond.

A schedule targets the ready queue itself with the wake-up message as its
input and deletes itself after it fires, so no timer Lambda is involved.
Schedule names are a hash of the timer's name: unique, idempotent (a second
create is a ConflictException, ignored) and within Scheduler's 64 characters.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from ..ports import Clock, StoreError
from .sqs_queue import MAX_DELAY, SqsQueue


def schedule_name(name: str) -> str:
    return "ll-" + hashlib.sha256(name.encode()).hexdigest()[:56]


class AwsTimers:
    def __init__(self, queue: SqsQueue, scheduler, queue_arn: str, group: str, role_arn: str, clock: Clock,
                 sqs_max_delay: int = MAX_DELAY):
        self._queue = queue
        self._scheduler = scheduler
        self._queue_arn = queue_arn
        self._group = group
        self._role_arn = role_arn
        self._clock = clock
        # The local runtime sets this to 0 when its clock can be moved: SQS
        # delays follow the real clock, schedules follow the runtime's.
        self._sqs_max_delay = sqs_max_delay

    def schedule(self, name: str, at: datetime, message: dict[str, Any]) -> None:
        delay = (at - self._clock.now()).total_seconds()
        if delay <= 0 or (self._sqs_max_delay and delay <= self._sqs_max_delay):
            self._queue.send(message, math.ceil(max(delay, 0)))
            return
        # at() has whole seconds: round up, so a timer never fires before its time.
        whole = at.astimezone(timezone.utc).replace(microsecond=0)
        if whole < at:
            whole += timedelta(seconds=1)
        moment = whole.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            self._scheduler.create_schedule(
                Name=schedule_name(name),
                GroupName=self._group,
                ScheduleExpression=f"at({moment})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={"Arn": self._queue_arn, "RoleArn": self._role_arn,
                        "Input": json.dumps(message, separators=(",", ":"))},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConflictException":
                return  # this timer exists already: a redelivery scheduled it
            raise StoreError(f"Scheduler CreateSchedule failed: {error}") from error
