"""infra/aws/timers.py: SQS DelaySeconds up to 15 minutes, one-time Scheduler schedules beyond (on moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.aws.sqs_queue import SqsQueue
from infra.aws.timers import AwsTimers, schedule_name
from infra.clock import ManualClock
from infra.ports import StoreError

REGION = "us-east-1"
GROUP = "loopline-timers"
ROLE_ARN = "arn:aws:iam::123456789012:role/loopline-scheduler"
# Whole seconds and far ahead, so at() strings are easy to read and always in the future.
START = datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
MESSAGE = {"k": "exec", "run": "run-1", "plan": "h", "task": "t", "attempt": 2, "note": "ünï"}


@dataclass
class Env:
    sqs: object
    scheduler: object
    queue_url: str
    queue_arn: str
    clock: ManualClock
    sent: list[dict]

    def timers(self, **kwargs) -> AwsTimers:
        return AwsTimers(SqsQueue(self.sqs, self.queue_url), self.scheduler, self.queue_arn, GROUP, ROLE_ARN,
                         self.clock, **kwargs)

    def schedules(self) -> list[dict]:
        listed = self.scheduler.list_schedules(GroupName=GROUP)["Schedules"]
        return [self.scheduler.get_schedule(GroupName=GROUP, Name=s["Name"]) for s in listed]

    def receive(self) -> list[dict]:
        reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in reply.get("Messages", [])]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        scheduler = boto3.client("scheduler", region_name=REGION)
        url = sqs.create_queue(QueueName="loopline-ready")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        scheduler.create_schedule_group(Name=GROUP)
        sent: list[dict] = []
        # Record the SendMessage parameters as the client receives them.
        sqs.meta.events.register("provide-client-params.sqs.SendMessage",
                                 lambda params, **_: sent.append(dict(params)))
        yield Env(sqs, scheduler, url, arn, ManualClock(START), sent)


def test_short_delay_goes_to_sqs_with_delay_seconds(env: Env) -> None:
    env.timers().schedule("retry-1", START + timedelta(seconds=30), MESSAGE)
    assert [(p["QueueUrl"], p["DelaySeconds"]) for p in env.sent] == [(env.queue_url, 30)]
    assert json.loads(env.sent[0]["MessageBody"]) == MESSAGE
    assert env.receive() == []  # delayed: not visible yet
    assert env.schedules() == []


@pytest.mark.parametrize("delay, sent", [(0.001, 1), (10.2, 11), (1, 1), (899.5, 900), (900, 900)])
def test_sqs_delay_is_rounded_up_to_whole_seconds(env: Env, delay: float, sent: int) -> None:
    env.timers().schedule("t", START + timedelta(seconds=delay), MESSAGE)
    assert [p["DelaySeconds"] for p in env.sent] == [sent]
    assert env.schedules() == []


def test_the_clock_not_the_wall_time_measures_the_delay(env: Env) -> None:
    env.clock.advance(seconds=100)
    env.timers().schedule("t", START + timedelta(seconds=160), MESSAGE)
    assert [p["DelaySeconds"] for p in env.sent] == [60]


@pytest.mark.parametrize("delay", [0, -1, -86400])
def test_past_due_goes_to_sqs_at_once(env: Env, delay: float) -> None:
    env.timers().schedule("t", START + timedelta(seconds=delay), MESSAGE)
    assert [p["DelaySeconds"] for p in env.sent] == [0]
    assert env.receive() == [MESSAGE]
    assert env.schedules() == []


def test_long_delay_creates_a_one_time_schedule(env: Env) -> None:
    at = START + timedelta(hours=3)
    env.timers().schedule("run-1/t/2/wake", at, MESSAGE)
    assert env.sent == []  # nothing on the queue
    [schedule] = env.schedules()
    assert schedule["Name"] == schedule_name("run-1/t/2/wake")
    assert schedule["GroupName"] == GROUP
    assert schedule["ScheduleExpression"] == "at(2031-03-04T08:06:07)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == env.queue_arn
    assert schedule["Target"]["RoleArn"] == ROLE_ARN
    assert json.loads(schedule["Target"]["Input"]) == MESSAGE


def test_just_beyond_the_sqs_limit_uses_the_scheduler(env: Env) -> None:
    env.timers().schedule("t", START + timedelta(seconds=900, milliseconds=1), MESSAGE)
    assert env.sent == []
    [schedule] = env.schedules()
    assert schedule["ScheduleExpression"] == "at(2031-03-04T05:21:08)"  # 05:21:07.001 rounded up


@pytest.mark.parametrize("at, expression", [
    (START + timedelta(hours=1), "at(2031-03-04T06:06:07)"),  # whole second: unchanged
    (START + timedelta(hours=1, microseconds=1), "at(2031-03-04T06:06:08)"),
    (START + timedelta(hours=1, milliseconds=999), "at(2031-03-04T06:06:08)"),
    (START + timedelta(hours=1, seconds=52, milliseconds=500), "at(2031-03-04T06:07:00)"),  # carries over
    (datetime(2031, 12, 31, 23, 59, 59, 1, tzinfo=timezone.utc), "at(2032-01-01T00:00:00)"),
    # Given in another zone: written in UTC.
    (datetime(2031, 3, 4, 8, 0, 0, 500, tzinfo=timezone(timedelta(hours=2))), "at(2031-03-04T06:00:01)"),
])
def test_schedule_time_is_rounded_up_to_the_whole_second(env: Env, at: datetime, expression: str) -> None:
    env.timers().schedule("t", at, MESSAGE)
    [schedule] = env.schedules()
    assert schedule["ScheduleExpression"] == expression
    assert schedule["ScheduleExpressionTimezone"] == "UTC"


def test_same_name_twice_is_idempotent(env: Env) -> None:
    timers = env.timers()
    timers.schedule("run-1/t/2/wake", START + timedelta(hours=2), MESSAGE)
    timers.schedule("run-1/t/2/wake", START + timedelta(hours=2), MESSAGE)  # a redelivery
    timers.schedule("run-1/t/2/wake", START + timedelta(hours=5), {"other": 1})  # the first one stands
    [schedule] = env.schedules()
    assert schedule["ScheduleExpression"] == "at(2031-03-04T07:06:07)"
    assert json.loads(schedule["Target"]["Input"]) == MESSAGE
    timers.schedule("run-1/t/3/wake", START + timedelta(hours=2), MESSAGE)
    assert len(env.schedules()) == 2


def test_schedule_names_are_stable_unique_and_short() -> None:
    long_name = "run-" + "x" * 500 + "/task/1/timeout"
    assert schedule_name("a") == schedule_name("a")
    assert schedule_name("a") != schedule_name("b")
    for name in ("a", long_name, "run/ü/1"):
        assert len(schedule_name(name)) <= 64
        assert all(c.isalnum() or c in "-_." for c in schedule_name(name))


def test_sqs_max_delay_zero_sends_everything_to_the_scheduler(env: Env) -> None:
    timers = env.timers(sqs_max_delay=0)
    timers.schedule("one-second", START + timedelta(seconds=1), MESSAGE)
    timers.schedule("fraction", START + timedelta(milliseconds=1), MESSAGE)
    timers.schedule("ten-minutes", START + timedelta(minutes=10), MESSAGE)
    assert env.sent == []
    assert sorted(s["ScheduleExpression"] for s in env.schedules()) == [
        "at(2031-03-04T05:06:08)", "at(2031-03-04T05:06:08)", "at(2031-03-04T05:16:07)"]


def test_sqs_max_delay_zero_still_sends_past_due_to_sqs(env: Env) -> None:
    timers = env.timers(sqs_max_delay=0)
    timers.schedule("now", START, MESSAGE)
    timers.schedule("late", START - timedelta(minutes=5), {"late": True})
    assert [p["DelaySeconds"] for p in env.sent] == [0, 0]
    assert env.schedules() == []
    assert sorted(env.receive(), key=json.dumps) == sorted([MESSAGE, {"late": True}], key=json.dumps)


def test_a_lower_sqs_max_delay_moves_the_boundary(env: Env) -> None:
    timers = env.timers(sqs_max_delay=60)
    timers.schedule("a", START + timedelta(seconds=60), MESSAGE)
    timers.schedule("b", START + timedelta(seconds=61), MESSAGE)
    assert [p["DelaySeconds"] for p in env.sent] == [60]
    assert [s["ScheduleExpression"] for s in env.schedules()] == ["at(2031-03-04T05:07:08)"]


def _stubbed_timers(env: Env, code: str) -> AwsTimers:
    scheduler = boto3.client("scheduler", region_name=REGION)
    stub = Stubber(scheduler)
    stub.add_client_error("create_schedule", service_error_code=code, http_status_code=400)
    stub.activate()
    return AwsTimers(SqsQueue(env.sqs, env.queue_url), scheduler, env.queue_arn, GROUP, ROLE_ARN, env.clock)


def test_conflict_from_the_scheduler_is_ignored(env: Env) -> None:
    _stubbed_timers(env, "ConflictException").schedule("t", START + timedelta(hours=1), MESSAGE)


def test_other_scheduler_errors_become_store_errors(env: Env) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(StoreError) as caught:
        _stubbed_timers(env, "ValidationException").schedule("t", START + timedelta(hours=1), MESSAGE)
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.__cause__.response["Error"]["Code"] == "ValidationException"
