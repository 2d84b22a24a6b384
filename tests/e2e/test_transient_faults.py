"""Transient faults (issue #5 item 3): throttling and 5xx answers on every AWS service the handlers
and the runtime use, injected through botocore (tests/faults.py), on the embedded default.

- faults on every 3rd request of each service: botocore's standard retry absorbs them all, no
  error reaches a handler, and each reference run ends exactly as a fault-free one;
- a burst longer than the clients' attempts: the error reaches the engine, SQS redelivers the
  message, and the run still ends as a fault-free one.

Runs are started and approvals decided through the api handler, so its clients are faulted too.
botocore's backoff is recorded, not slept (``fast_backoff``).
"""

from __future__ import annotations

import json
import time

import boto3
import pytest

import infra.dispatch.runner as runner
from bench.crash_points import WORKFLOWS as REFERENCE
from infra.wiring import get_engine
from loopline.embedded.runtime import REGION, LocalRuntime
from tests.conftest import api_event
from tests.faults import Burst, Every, FaultInjector, fast_backoff, never

# A burst kills a worker invocation; Powertools' log_metrics then flushes an empty metric set and warns.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# The crash-point harness's reference workflows; "large_payload" (100 KB) goes through S3.
WORKFLOWS = {name: REFERENCE[name] for name in ("chain", "fan_out_in", "timer", "approval", "large_payload")}
# every run (lambda: the task runner's invoke); S3 for large values
HANDLER_SERVICES = {"dynamodb", "sqs", "scheduler", "secrets-manager", "lambda"}
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


@pytest.fixture
def injector(aws, monkeypatch):
    """Hooked on both sessions before any client is made: the handlers' (boto3's default session,
    which infra/wiring.py's clients come from) and the runtime's (EmbeddedAws.session)."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh one; the old one is back after the test
    boto3.setup_default_session(region_name=REGION)
    injector = FaultInjector()
    injector.attach(boto3.DEFAULT_SESSION.events)
    injector.attach(aws.session.events)
    with fast_backoff() as delays:
        injector.delays = delays
        yield injector


class Stack:
    """The Lambda side: a runtime that can be cold-started again (new engine, new clients)."""

    def __init__(self, aws, clock, injector):
        self.aws, self.clock, self.injector = aws, clock, injector
        self.errors: list[str] = []  # what the runtime logged: a handler's exception, none expected
        self.receive_counts: list[int] = []  # ApproximateReceiveCount of every message the worker got
        self.runtime = self._new()

    def _new(self) -> LocalRuntime:
        # The task runner inline: its result is on its queue when the worker's invoke returns, so an
        # idle pump (which moves the clock an hour) never overtakes a running task.
        runtime = LocalRuntime(self.aws, clock=self.clock, log=self.errors.append, inline_code=True)
        invoke = runtime.invoke

        def noting(function_id, event):
            if function_id == "WorkerFunction":
                self.receive_counts += [int(r["attributes"]["ApproximateReceiveCount"]) for r in event["Records"]]
            return invoke(function_id, event)

        runtime.invoke = noting
        return runtime

    def cold_start(self) -> None:
        self.runtime.stop()
        self.runtime = self._new()

    def api(self, event: dict) -> tuple[int, dict]:
        response = self.runtime.invoke("ApiFunction", event)
        return response["statusCode"], json.loads(response["body"] or "null")

    def look(self, run_id: str) -> dict:
        with self.runtime.lock, self.injector.quiet():
            return get_engine().describe_run(run_id)

    def run(self, text: str, after_start=None, timeout: float = 30) -> dict:
        """POST /runs, then pump to the end, approving through the api; an idle pump with no message
        in flight moves the clock an hour (timers come due, leases end)."""
        status, body = self.api(api_event("api_post_runs.json", body={"workflow": text, "input": {}}))
        assert status == 201, body
        run_id = body["run_id"]
        if after_start:
            after_start()
        decided: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.look(run_id)
            if current["status"] in TERMINAL:
                return current
            for entry in current["approvals"]:
                token = entry["url"].rsplit("/", 1)[1]
                if token not in decided:
                    status, reply = self.api(api_event("api_post_approval.json", {"token": token}))
                    assert status == 200, reply
                    decided.add(token)
            if self.runtime.pump_once() == 0:
                if not self.queued():  # a message that failed comes back first, as it would on AWS
                    self.clock.advance(3600)
                time.sleep(0.02)
        raise AssertionError(f"run {run_id} did not end: {self.look(run_id)}")

    def queued(self) -> bool:
        """Is a message on the worker's queues, visible or in flight (a failed one returns when its
        visibility timeout ends, a second here, far less than any lease), or a task runner's invocation
        still running (moving the clock an hour then would end its lease while its code runs)?"""
        if self.runtime.lambda_service.in_flight:
            return True  # a task runner's code still running: its record is on its way to a queue
        sqs = self.aws.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        with self.injector.quiet():
            return any(int(count) for name in ("ReadyQueue", "TaskResultQueue") for count in sqs.get_queue_attributes(
                QueueUrl=self.aws.stack.physical[name], AttributeNames=names)["Attributes"].values())


@pytest.fixture
def stack(aws, clock, injector):
    stack = Stack(aws, clock, injector)
    yield stack
    stack.runtime.stop()


def summary(run: dict):
    return run["status"], run["outputs"], {
        k: (t["status"], _timeless(t["output"]), t["attempts"]) for k, t in run["tasks"].items()}


def _timeless(value):
    """Times differ between two runs (the clock moves): compare what was decided."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def clean_then_faulted(stack, injector, actions, text: str, plan) -> tuple:
    """A fault-free run, then (after a cold start) the same workflow with ``plan`` armed."""
    injector.plan = never
    clean = summary(stack.run(text))
    clean_actions = sorted(actions)
    actions.clear()
    stack.cold_start()  # the link key is fetched again: Secrets Manager is faulted too
    injector.plan = plan
    return clean, clean_actions


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_faults_on_every_service_are_retried_and_the_run_ends_as_without_them(stack, injector, actions, name):
    clean, clean_actions = clean_then_faulted(stack, injector, actions, WORKFLOWS[name], Every(3))
    faulted = stack.run(WORKFLOWS[name])

    assert summary(faulted) == clean  # same status, outputs, task results; every task attempts == 1
    assert sorted(actions) == clean_actions  # each python task's action ran exactly once
    services = HANDLER_SERVICES | ({"s3"} if name == "large_payload" else set())
    assert {s for s, n in injector.faults.items() if n > 0} >= services, injector.summary()
    # Each fault was followed by one retry that went through (the next request of that service is
    # never faulted), so no error reached a handler or the runtime's pumps.
    assert injector.retries == injector.faults
    assert stack.errors == []
    assert max(stack.receive_counts) == 1  # no message needed a redelivery
    assert len(injector.delays) == sum(injector.retries.values())


def test_a_burst_longer_than_the_retries_goes_back_to_sqs_and_the_run_ends_once(stack, injector, actions):
    """10 faults in a row on DynamoDB, from the worker's first request for the new run: its 9
    attempts (max_attempts 8 = 8 retries) fail, the error reaches the engine, the batch fails and
    SQS redelivers it a second later; the 10th fault is then retried away."""
    text = WORKFLOWS["chain"]
    clean, clean_actions = clean_then_faulted(stack, injector, actions, text, never)
    burst = Burst("dynamodb", 10)
    faulted = stack.run(text, after_start=lambda: setattr(injector, "plan", burst))

    assert burst.remaining == 0
    # One request's 9 attempts, then the redelivery's first attempt.
    assert [(op, attempt) for _, op, attempt, _ in injector.log] == [(injector.log[0][1], n) for n in range(1, 10)] + [
        (injector.log[9][1], 1)], injector.log
    assert len(stack.errors) == 1 and "reached max retries: 8" in stack.errors[0]
    assert max(stack.receive_counts) == 2  # the message came back from SQS
    assert summary(faulted) == clean
    assert sorted(actions) == clean_actions  # the failed request wrote nothing: no task ran twice


def test_a_burst_after_a_task_effect_records_its_result_when_the_result_comes_back(stack, injector, actions,
                                                                                   monkeypatch):
    """The same burst right after task b's code ran in the task runner: recording b's result fails
    past its retries, so the result message returns to its queue, and its redelivery records it.
    The code does not run again (its result is a message of its own, no longer the worker's memory);
    the run ends as a fault-free one, b recorded once with attempts 1."""
    text = WORKFLOWS["chain"]
    clean, clean_actions = clean_then_faulted(stack, injector, actions, text, never)
    real = runner.run_code
    # On reads: the result's handling starts with one (the run, b and what b sees). The stream's consumer,
    # which keeps history meanwhile, reads too (which entries are there: BatchGetItem): it runs unfaulted
    # here, so the burst falls on the worker's read.
    burst = Burst("dynamodb", 10, operation="BatchGetItem")
    history = stack.runtime.streams.invoke

    def unfaulted(*args, **kwargs):
        with injector.quiet():
            return history(*args, **kwargs)

    monkeypatch.setattr(stack.runtime.streams, "invoke", unfaulted)

    def then_dynamodb_fails(request, settings):
        reply = real(request, settings)
        if request.task_id == "b" and injector.plan is never:
            injector.plan = burst
        return reply

    monkeypatch.setattr(runner, "run_code", then_dynamodb_fails)
    faulted = stack.run(text)

    assert burst.remaining == 0 and "reached max retries: 8" in stack.errors[0]
    assert max(stack.receive_counts) == 2  # b's result came back from SQS
    assert summary(faulted) == clean
    assert clean_actions == ["a", "b", "c"] and sorted(actions) == ["a", "b", "c"]
