"""An idle local stack sleeps (issue #11: `loopline dev` used 12 % of a core doing nothing), and
wakes for what gives it work: a request, a message sent, a delayed message's time, a task
runner's record. Each runtime here may sleep 60 s when idle, so a run that finishes in time
shows that something woke it; fresh moto per test (EmbeddedAws, region us-east-1)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from infra.aws.timers import AwsTimers
from infra.clock import ManualClock, SystemClock
from infra.wiring import get_engine
from loopline.client import api_call
from loopline.doorbell import Doorbell
from loopline.embedded.runtime import REGION, EmbeddedAws, LocalRuntime
from loopline.memory.local_mode import LocalMode
from statemachine.compiler import compile_workflow
from statemachine.messages import Kind, TimerFired, encode

IDLE = 60.0
# A python task (the task runner's record), a 1 s wait (an SQS delayed message), an approval (a request).
CHAIN = json.dumps({"workflow": {"metadata": {"id": "woken"}, "tasks": [
    {"id": "code", "type": "python", "config": {"code": "result = 2"}},
    {"id": "nap", "type": "wait", "depends_on": ["code"], "config": {"duration": "1s"}},
    {"id": "ask", "type": "approval", "depends_on": ["nap"],
     "config": {"title": "Go on?", "approvers": ["a@example.com"], "timeout": "2h"}}]}})  # JSON is YAML


@pytest.fixture
def aws():
    stack = EmbeddedAws()
    yield stack
    stack.stop()


def receives_counted(aws: EmbeddedAws) -> list[str]:
    """The ReceiveMessage calls of clients made from now on by the runtime's session (its pumps')."""
    calls: list[str] = []
    aws.session.events.register("before-call.sqs.ReceiveMessage", lambda **_: calls.append("receive"))
    return calls


def view(runtime: LocalRuntime, run_id: str) -> dict:
    with runtime.lock:
        return get_engine().describe_run(run_id)


def never(asked: list[float]):
    """A ``done`` that notes each time it is asked and is never done."""
    def done() -> bool:
        asked.append(time.monotonic())
        return False
    return done


def soon(check, tries: int = 200):
    """``check()``'s first true answer, asked every 0.1 s while the runtime's own thread pumps."""
    for _ in range(tries):
        answer = check()
        if answer:
            return answer
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_an_idle_dev_pump_does_not_poll(aws):
    receives = receives_counted(aws)
    runtime = LocalRuntime(aws, clock=SystemClock(), idle_limit=IDLE).start(http_port=0)
    try:
        time.sleep(0.5)  # its first passes
        before = len(receives)
        time.sleep(1.5)
        assert len(receives) == before  # a pump looking every 50 ms made ~90 receives (3 queues) here
    finally:
        runtime.stop()


def test_requests_sends_delays_and_records_wake_the_sleeping_pump(aws):
    """The run needs each wake in turn: POST /runs (a request, then the start message), the task
    runner's record (sent from its own thread), the 1 s wait (an SQS delayed message), the
    approval decision (a request). With nothing else waking it, each would take 60 s."""
    runtime = LocalRuntime(aws, clock=SystemClock(), idle_limit=IDLE).start(http_port=0)
    try:
        status, started = api_call("POST", runtime.gateway.url + "/runs", {"workflow": CHAIN})
        assert status == 201
        run_id = started["run_id"]
        approvals = soon(lambda: view(runtime, run_id)["approvals"])
        status, _ = api_call("POST", approvals[0]["url"], {"decision": "APPROVED"})
        assert status == 200
        done = soon(lambda: view(runtime, run_id)["status"] == "COMPLETED" and view(runtime, run_id))
        assert done["tasks"]["code"]["output"] == 2
    finally:
        runtime.stop()


def test_run_until_sleeps_while_idle_and_wakes_for_a_message(aws):
    runtime = LocalRuntime(aws, clock=SystemClock(), idle_limit=IDLE)
    try:
        asked: list[float] = []
        assert runtime.run_until(never(asked), timeout=1.5) is False
        assert len(asked) <= 4  # asked on waking only (a 50 ms poll asked ~30 times)
        with runtime.lock:
            run_id = get_engine().start_run(compile_workflow(CHAIN, "w.yaml"), {})
        assert runtime.run_until(lambda: view(runtime, run_id)["approvals"], timeout=20)
    finally:
        runtime.stop()


def test_the_doorbell_hears_sends_and_delays_on_a_client(aws):
    bell = Doorbell(idle_limit=IDLE)
    sqs = bell.attach(boto3.session.Session(region_name=REGION).client("sqs"))
    url = aws.stack.queue_sources[0].queue_url
    bell.arm()
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])  # reads wake nobody
    assert bell.sleep(0.1) is False
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert bell.sleep(0.1) is True
    sqs.send_message(QueueUrl=url, MessageBody="{}", DelaySeconds=1)
    assert bell.sleep(0.1) is True  # the send itself
    started = time.monotonic()
    assert bell.sleep(30) is True  # then its due time
    assert 0.5 <= time.monotonic() - started < 10


def test_local_mode_sleeps_while_idle_and_a_runner_result_wakes_it():
    mode = LocalMode(clock=SystemClock())
    mode.doorbell.idle_limit = IDLE
    try:
        asked: list[float] = []
        assert mode.run_until(never(asked), timeout=1.5) is False
        assert len(asked) <= 4  # a 50 ms wait asked ~30 times
        run_id = mode.engine.start_run(compile_workflow(CHAIN, "w.yaml"), {})
        assert mode.run_until(lambda: mode.engine.describe_run(run_id)["approvals"], timeout=20)
    finally:
        mode.close()


def test_a_schedule_coming_due_wakes_the_sleeping_pump(aws):
    """A schedule made by a client the doorbell does not hear (as one an earlier process made): the
    pump works out its time on the pass before it sleeps, and wakes for it."""
    runtime = LocalRuntime(aws, clock=SystemClock(), idle_limit=IDLE)
    try:
        scheduler = boto3.session.Session(region_name=REGION).client("scheduler")
        group = os.environ["LOOPLINE_SCHEDULE_GROUP"]
        timers = AwsTimers(get_engine().queue, scheduler, os.environ["LOOPLINE_READY_QUEUE_ARN"], group,
                           os.environ["LOOPLINE_SCHEDULER_ROLE_ARN"], SystemClock(), sqs_max_delay=0)
        wake = TimerFired(kind=Kind.WAKE, run="no-such-run", plan="p", task="t", attempt=1)
        timers.schedule("idle-test", datetime.now(timezone.utc) + timedelta(seconds=2), encode(wake))
        started = time.monotonic()
        assert runtime.run_until(lambda: not scheduler.list_schedules(GroupName=group)["Schedules"], timeout=30)
        assert time.monotonic() - started < 20  # fired at its time, not at the 60 s limit
    finally:
        runtime.stop()


def test_moving_the_movable_clock_wakes_the_sleeping_pump(aws):
    runtime = LocalRuntime(aws, clock=ManualClock(), idle_limit=IDLE).start(http_port=0)
    try:
        nap = json.dumps({"workflow": {"metadata": {"id": "nap"}, "tasks": [
            {"id": "nap", "type": "wait", "config": {"duration": "1h"}}]}})
        status, started = api_call("POST", runtime.gateway.url + "/runs", {"workflow": nap})
        assert status == 201
        run_id = started["run_id"]
        soon(lambda: view(runtime, run_id)["tasks"]["nap"]["status"] == "WAITING")
        assert api_call("POST", runtime.gateway.url + "/_dev/clock", {"seconds": 3601})[0] == 200
        soon(lambda: view(runtime, run_id)["status"] == "COMPLETED", tries=150)  # 15 s, not the 60 s limit
    finally:
        runtime.stop()


def test_a_runtime_that_started_on_empty_queues_takes_the_delayed_watchdogs_for_its_own(aws):
    """A code task leaves its watchdog delayed in the ready queue for its lease. A runtime that found
    the queues empty when it started sent every message in them itself, so while the watchdog waits
    its idle pump neither reads the queues' attributes nor wakes every second for them."""
    looks: list[str] = []
    aws.session.events.register("before-call.sqs.GetQueueAttributes", lambda **_: looks.append("look"))
    runtime = LocalRuntime(aws, clock=SystemClock(), idle_limit=IDLE)
    code = json.dumps({"workflow": {"metadata": {"id": "code"}, "tasks": [
        {"id": "code", "type": "python", "config": {"code": "result = 2"}}]}})
    try:
        with runtime.lock:
            run_id = get_engine().start_run(compile_workflow(code, "w.yaml"), {})
        assert runtime.run_until(lambda: view(runtime, run_id)["status"] == "COMPLETED", timeout=30)
        before, asked = len(looks), []
        assert runtime.run_until(never(asked), timeout=2.5) is False
        assert len(looks) == before
        # Asked on starting and at the end; a pump looking every second while the watchdog waits
        # was also asked in between.
        assert [t for t in asked if asked[0] + 0.5 < t < asked[0] + 2.0] == []
    finally:
        runtime.stop()
