"""Runs on the embedded stack driven message by message, for the concurrency tests.

``Bench`` starts runs, delivers the ready queue's messages one at a time until the ones a test
wants to duplicate or reorder (returned received, undelivered), and drives a run to its end. It
counts, per run, how many times each task's action really ran: the side effect a double advance
would repeat. ``interleavings`` tries two invocations in every interleaving of their AWS calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable

import boto3
import pytest

from infra.wiring import get_engine
from loopline.embedded.runtime import LocalRuntime
from tests.concurrency import Lambdas, PausePoint, interleave, linearizable_moto
from tests.conftest import api_event, compile_yaml, count_actions

ENDED = ("COMPLETED", "FAILED", "CANCELLED")


class Bench:
    def __init__(self, runtime: LocalRuntime, clock, point: PausePoint):
        self.runtime = runtime
        self.clock = clock
        self.point = point
        self.lambdas = Lambdas(runtime)
        self._actions: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------ observing

    def count_action(self, run_id: str, task_id: str) -> None:
        with self._lock:
            self._actions.append((run_id, task_id))

    def actions(self, run_id: str) -> Counter:
        with self._lock:
            return Counter(task for run, task in self._actions if run == run_id)

    def view(self, run_id: str) -> dict[str, Any]:
        return get_engine().describe_run(run_id)

    def status(self, run_id: str) -> str | None:
        run = get_engine().store.get_run(run_id)  # one read, where the whole view takes several
        return run.status if run else None

    # ------------------------------------------------------------ driving

    def start(self, text: str, inputs: dict | None = None) -> str:
        return get_engine().start_run(compile_yaml(text), inputs or {})

    def hold(self, *wanted: Callable[[dict], bool], timeout: float = 20.0) -> list[dict[str, Any]]:
        """Deliver messages one by one until, for each of ``wanted``, a message whose body it accepts
        has come: those are returned received (in flight for the visibility timeout), undelivered."""
        held: list[dict[str, Any] | None] = [None] * len(wanted)
        deadline = time.monotonic() + timeout
        while None in held:
            if time.monotonic() > deadline:
                raise TimeoutError("a wanted message never came")
            messages = self.lambdas.receive(1)
            if not messages:
                self.runtime.fire_due_timers()
                time.sleep(0.01)
                continue
            body = json.loads(messages[0]["Body"])
            slot = next((i for i, want in enumerate(wanted) if held[i] is None and want(body)), None)
            if slot is None:
                self.lambdas.deliver(messages[0])
            else:
                held[slot] = messages[0]
        return held  # type: ignore[return-value]

    def step_past(self, wanted: Callable[[dict], bool]) -> None:
        """Deliver messages one by one up to and including the first that ``wanted`` accepts."""
        self.lambdas.deliver(*self.hold(wanted))

    def finish(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Deliver messages and fire due timers until the run ends; when nothing is left to do,
        move the clock on (timers, retries and leases come due)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(run_id) in ENDED:
                return self.view(run_id)
            if self.lambdas.poll(1) == 0 and self.runtime.fire_due_timers() == 0:
                self.clock.advance(61)
                time.sleep(0.01)
        raise TimeoutError(f"run {run_id} did not end: {self.view(run_id)}")

    def send(self, body: str, copies: int, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Put ``body`` on the ready queue (or ``queue_url``) ``copies`` times and receive exactly those
        messages (as an at-least-once sender, e.g. EventBridge Scheduler, may deliver one input more than once)."""
        for _ in range(copies):
            self.lambdas.sqs.send_message(QueueUrl=queue_url or self.lambdas.queue_url, MessageBody=body)
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(got) < copies and time.monotonic() < deadline:
            for message in self.lambdas.receive(10):
                if message["Body"] == body:
                    got.append(message)
                else:  # something else of an earlier run: it goes back
                    self.lambdas.sqs.change_message_visibility(QueueUrl=message["_queue"],
                                                               ReceiptHandle=message["ReceiptHandle"],
                                                               VisibilityTimeout=0)
        assert len(got) == copies
        return got


@contextmanager
def bench_on(aws, clock, monkeypatch):
    """The stack with linearizable moto, a pause point on the handlers' AWS calls, concurrent
    Lambdas, and the action counter."""
    # Metrics off: their lines would go to this process's stdout (LocalRuntime points a Lambda's stdout
    # at a sink, a process-wide redirection that concurrent invocations cannot each have).
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    boto3.setup_default_session(region_name="us-east-1")
    point = PausePoint(boto3.DEFAULT_SESSION.events)  # before the engine's clients are made
    with linearizable_moto():
        # The task runner runs inline, inside the worker's Invoke: its record is on the result queue
        # when the invoke returns, so every interleaving is one of AWS calls, as before.
        runtime = LocalRuntime(aws, clock=clock, inline_code=True)
        made = Bench(runtime, clock, point)
        count_actions(monkeypatch, lambda run_id, task_id, index: made.count_action(run_id, task_id))
        get_engine()  # built now, in this thread: no invocation under test pays for it
        try:
            yield made
        finally:
            runtime.stop()
            boto3.setup_default_session(region_name="us-east-1")  # the pause point goes with it


@contextmanager
def own_bench():
    """A bench on an emulated AWS of its own, for a whole test module: provisioning the stack
    takes longer than most scenarios, and runs do not see each other (each has its own id)."""
    from infra.clock import ManualClock
    from loopline.embedded.runtime import EmbeddedAws

    aws = EmbeddedAws(redelivery_seconds=1)
    patches = pytest.MonkeyPatch()
    try:
        with bench_on(aws, ManualClock(), patches) as made:
            yield made
    finally:
        patches.undo()
        aws.stop()


# ---------------------------------------------------------------- every interleaving of two invocations


def interleavings(bench: Bench, prepare, first, second, check) -> tuple[int, list[dict]]:
    """prepare() a run, then first(ctx) and second(ctx) interleaved, then check(ctx, first, second)
    (a list of problems), for every interleaving: the second after each AWS call of the first but
    its last (after the last is the same as the first wholly first), wholly before and wholly
    after it. Returns how many interleavings were tried, and the problems of each."""
    problems: list[dict] = []

    def one(at):
        bench.lambdas.errors.clear()
        ctx = prepare()
        done_first, done_second, _ = interleave(bench.point, lambda: first(ctx), lambda: second(ctx), at)
        calls = bench.point.calls
        found = check(ctx, done_first, done_second) + [{"worker error": e} for e in bench.lambdas.errors]
        problems.extend({"second_after_call": at, **p} for p in found)
        return calls

    calls = one(None)  # the first wholly first: also counts its AWS calls
    assert calls >= 2  # the enumeration is real: the first invocation talks to AWS
    for at in range(0, calls):  # 0: the second wholly first
        one(at)
    return calls + 1, problems


def no_problems(problems: list[dict]) -> None:
    assert not problems, "\n".join(json.dumps(p, default=str) for p in problems)


def summary(view: dict[str, Any]) -> tuple:
    """What a run decided: its status and outputs, and each task's status, output and attempts
    (times taken out, as the clock moves differently from one scenario to the next)."""
    def comparable(output):
        if isinstance(output, dict) and "woke_at" in output:
            return "woke"
        if isinstance(output, dict) and "decision" in output:
            return output["decision"], output.get("approver"), len(output.get("votes") or [])
        if isinstance(output, dict) and "tool_calls" in output:  # an llm task's: how long each call took differs
            return output.get("answer"), [{k: v for k, v in c.items() if k != "duration_ms"}
                                          for c in output["tool_calls"]]
        return output

    tasks = {k: (t["status"], comparable(t["output"]), t["attempts"]) for k, t in view["tasks"].items()}
    return view["status"], view["outputs"], tasks


# ---------------------------------------------------------------- messages and links


def run_of(body: dict) -> str | None:
    """The run a message is about: an engine message's ``run``, a task runner result's attempt's run."""
    if "requestContext" in body:
        return ((body.get("requestPayload") or {}).get("attempt") or {}).get("run")
    return body.get("run")


def exec_of(run_id: str, task_id: str) -> Callable[[dict], bool]:
    return lambda body: body.get("k") == "exec" and body.get("run") == run_id and body.get("task") == task_id


def start_of(run_id: str) -> Callable[[dict], bool]:
    """The run's start message: its handling runs the first task too (carried on, carry_on.py)."""
    return lambda body: body.get("k") == "start" and body.get("run") == run_id


def timer_input(aws, run_id: str) -> str:
    """The input of the run's pending one-time schedule, which is deleted (it has fired)."""
    scheduler = aws.client("scheduler")
    group = aws.stack.physical["TimerGroup"]
    for entry in scheduler.list_schedules(GroupName=group)["Schedules"]:
        schedule = scheduler.get_schedule(Name=entry["Name"], GroupName=group)
        body = schedule["Target"]["Input"]
        if json.loads(body).get("run") == run_id:
            scheduler.delete_schedule(Name=entry["Name"], GroupName=group)
            return body
    raise LookupError(f"no schedule for run {run_id}")


def waiting_approval(bench: Bench, text: str) -> tuple[str, dict[str, str]]:
    """A run of ``text`` whose task ``ask`` waits for approval; its links' tokens by approver."""
    run_id = bench.start(text)
    # The approvers are notified once the request and its links are stored.
    bench.step_past(lambda body: body.get("k") == "notify" and body.get("run") == run_id)
    return run_id, {a["approver"]: a["url"].rsplit("/", 1)[1] for a in bench.view(run_id)["approvals"]}


def post_decision(bench: Bench, token: str, decision: str) -> tuple[int, Any]:
    return bench.lambdas.api(api_event("api_post_approval.json", {"token": token},
                                       body={"decision": decision, "comments": decision.lower()}))


def waiting_callback(bench: Bench, text: str) -> tuple[str, str]:
    """A run of ``text`` whose task ``hook`` waits for its callback; the callback's token."""
    run_id = bench.start(text)
    bench.step_past(start_of(run_id))  # it runs hook, which begins its wait
    return run_id, bench.view(run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]


def post_callback(bench: Bench, token: str, body: Any) -> tuple[int, Any]:
    return bench.lambdas.api(api_event("api_post_callback.json", {"token": token}, body=body))


# ---------------------------------------------------------------- workflows

CHAIN = """
workflow:
  metadata: {id: chain}
  tasks:
    - {id: a, type: python, config: {code: "result = 2"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] * 10"}}
  outputs: {mappings: {b: "${tasks.b.output}"}}
"""

FAN_IN = """
workflow:
  metadata: {id: fan_in}
  tasks:
    - {id: x, type: python, config: {code: "result = 3"}}
    - {id: y, type: python, config: {code: "result = 4"}}
    - {id: z, type: python, depends_on: [x, y], config: {code: "result = tasks['x']['output'] * tasks['y']['output']"}}
  outputs: {mappings: {z: "${tasks.z.output}"}}
"""

# A fan-out and a join, beside a parallel loop (two iterations at a time): two sinks.
FAN_OUT = """
workflow:
  metadata: {id: fan_out}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: x1, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: x2, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 2"}}
    - {id: x3, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 3"}}
    - id: join
      type: python
      depends_on: [x1, x2, x3]
      config: {code: "result = tasks['x1']['output'] * tasks['x2']['output'] * tasks['x3']['output']"}
  control_flow:
    loops:
      - id: each
        depends_on: [a]
        items: [1, 2, 3, 4]
        parallel: true
        max_concurrent: 2
        tasks:
          - {id: sq, type: python, config: {code: "result = item * item"}}
  outputs: {mappings: {join: "${tasks.join.output}", squares: "${tasks.each.output}"}}
"""
FAN_OUT_OUTPUTS = {"join": 2 * 3 * 4, "squares": [1, 4, 9, 16]}
FAN_OUT_ACTIONS = Counter(a=1, x1=1, x2=1, x3=1, join=1, sq=4)

WAIT = """
workflow:
  metadata: {id: wait}
  tasks:
    - {id: pause, type: wait, config: {duration: 2h}}
    - {id: after, type: python, depends_on: [pause], config: {code: "result = 'woke'"}}
"""

APPROVAL = """
workflow:
  metadata: {id: approval}
  tasks:
    - {id: ask, type: approval, config: {title: "ok?", approvers: [a@example.com], timeout: 1h}}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = tasks['ask']['output']['decision']"}}
"""

TWO_APPROVERS = """
workflow:
  metadata: {id: two_approvers}
  tasks:
    - {id: ask, type: approval, config: {title: "ok?", approvers: [a@example.com, b@example.com]}}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = tasks['ask']['output']['decision']"}}
"""

CALLBACK = """
workflow:
  metadata: {id: callback}
  tasks:
    - {id: hook, type: callback}
    - {id: after, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['v']"}}
"""
