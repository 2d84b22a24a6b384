"""The durability invariants on the embedded stack (moto + the local runtime, same handler code).

- the same SQS message delivered twice advances the run once;
- a process killed after a state write and before the enqueue does not strand the run;
- a process killed while running a task: the task is taken over once its lease ends;
- a pending timer survives a restart of the runtime's pumps.

A "kill" raises a BaseException out of the handler (nothing catches it, as
nothing runs after a Lambda dies), then the test drops the runtime and every
in-memory engine state, and starts a new runtime on the same emulated AWS.
"""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

import infra.dispatch.runner as runner
import infra.engine.attempts as execute
from infra.tasks.registry import TaskTypes
from infra.wiring import get_engine
from loopline.embedded.runtime import LocalRuntime
from tests.conftest import compile_yaml

# A simulated kill unwinds through Powertools' log_metrics, which then flushes an empty
# metric set and warns; a really dead process would flush nothing.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CHAIN = """
workflow:
  metadata: {id: chain3}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: c, type: python, depends_on: [a, b], config: {code: "result = tasks['b']['output'] * 10"}}
  outputs:
    mappings: {c: "${tasks.c.output}"}
"""


class SimulatedCrash(BaseException):
    """The process dies here: not an error any code path handles."""


def start(runtime, text, inputs=None):
    with runtime.lock:
        return get_engine().start_run(compile_yaml(text), inputs or {})


def view(runtime, run_id):
    with runtime.lock:
        return get_engine().describe_run(run_id)


def finish(runtime, run_id, timeout=30):
    def ended():
        current = view(runtime, run_id)
        return current is not None and current["status"] in ("COMPLETED", "FAILED", "CANCELLED")

    assert runtime.run_until(ended, timeout), view(runtime, run_id)
    return view(runtime, run_id)


def summary(run):
    tasks = {k: (t["status"], t["output"], t["attempts"]) for k, t in run["tasks"].items()}
    return run["status"], run["outputs"], tasks


def test_the_same_message_delivered_twice_advances_the_run_once(runtime, actions, monkeypatch):
    clean = finish(runtime, start(runtime, CHAIN))
    actions.clear()
    real_invoke = runtime.invoke

    def twice(function_id, event):
        if function_id == "WorkerFunction":
            real_invoke(function_id, event)  # SQS delivers the same batch again
        return real_invoke(function_id, event)

    monkeypatch.setattr(runtime, "invoke", twice)
    doubled = finish(runtime, start(runtime, CHAIN))
    assert summary(doubled) == summary(clean)
    assert sorted(actions) == ["a", "b", "c"]


def test_killed_after_a_state_write_before_the_next_task_starts_the_run_completes_after_restart(aws, clock, actions):
    runtime = LocalRuntime(aws, clock=clock)
    clean = finish(runtime, start(runtime, CHAIN))
    runtime.stop()
    actions.clear()

    boto3.setup_default_session(region_name="us-east-1")
    crashes = []

    def crash_before_b_starts(params, **_):
        # b is carried on in the invocation that finished a (docs/durability.md rule 11): its next
        # step is no SendMessage but b's claim, the first write to b's item (a PutItem where b has
        # no item, as here; an UpdateItem where it has one).
        written = params.get("Key") or params.get("Item") or {}
        if written.get("sk", {}).get("S") == "T#b" and not crashes:
            crashes.append(params)
            raise SimulatedCrash("killed between a's state write and b's start")

    for write in ("PutItem", "UpdateItem"):
        boto3.DEFAULT_SESSION.events.register(f"before-parameter-build.dynamodb.{write}", crash_before_b_starts)
    runtime = LocalRuntime(aws, clock=clock)
    run_id = start(runtime, CHAIN)
    with pytest.raises(SimulatedCrash):
        runtime.run_until(lambda: False, timeout=20)
    assert crashes
    with runtime.lock:
        tasks = get_engine().describe_run(run_id)["tasks"]
    assert tasks["a"]["status"] == "COMPLETED" and tasks["b"]["status"] == "PENDING"  # written, not started
    runtime.stop()  # every in-memory state of the "dead" process goes

    runtime = LocalRuntime(aws, clock=clock)
    try:
        recovered = finish(runtime, run_id)  # a's message comes back after its visibility timeout
    finally:
        runtime.stop()
    assert summary(recovered) == summary(clean)
    assert sorted(actions) == ["a", "b", "c"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the runner's thread dies
def test_killed_while_running_a_task_it_is_taken_over_after_the_lease(runtime, clock, monkeypatch):
    """The task runner's environment dies while b's code runs, and no record of it ever comes back:
    b stays RUNNING until its watchdog comes due after the lease, which takes the attempt over (a new
    token: a late answer of the dead runner would be refused) and runs the code again."""
    real = runner.run_code
    ran: list[str] = []

    def dies_once(request, settings):
        ran.append(request.task_id)
        if request.task_id == "b" and ran.count("b") == 1:
            raise SimulatedCrash("killed mid-task")
        return real(request, settings)

    monkeypatch.setattr(runner, "run_code", dies_once)
    run_id = start(runtime, CHAIN)
    assert runtime.run_until(lambda: ran.count("b") == 1, 20)
    runtime.run_until(lambda: False, timeout=1.5)  # the exec message is done; nothing comes back
    assert view(runtime, run_id)["tasks"]["b"]["status"] == "RUNNING"
    with runtime.lock:
        first = get_engine().store.list_tasks(run_id)["b"]
    clock.advance(300 + 90 + 2)  # past b's lease (python's default timeout + the margin): its watchdog is due
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20}
    assert done["tasks"]["b"]["attempts"] == 1 and ran == ["a", "b", "b", "c"]
    with runtime.lock:
        assert get_engine().store.list_tasks(run_id)["b"].token_hash != first.token_hash


def test_a_pending_scheduler_timer_survives_a_restart_of_the_pumps(aws, clock):
    text = """
    workflow:
      metadata: {id: long_wait}
      tasks:
        - {id: pause, type: wait, config: {duration: 2h}}
        - {id: after, type: python, depends_on: [pause], config: {code: "result = 'woke'"}}
    """
    runtime = LocalRuntime(aws, clock=clock)
    run_id = start(runtime, text)
    assert runtime.run_until(lambda: view(runtime, run_id)["tasks"]["pause"]["status"] == "WAITING", 10)
    scheduler = aws.session.client("scheduler")
    group = aws.stack.physical["TimerGroup"]
    assert len(scheduler.list_schedules(GroupName=group)["Schedules"]) == 1
    runtime.stop()

    runtime = LocalRuntime(aws, clock=clock)
    try:
        runtime.run_until(lambda: False, timeout=0.5)
        assert view(runtime, run_id)["tasks"]["pause"]["status"] == "WAITING"  # not due yet
        clock.advance(timedelta(hours=2, seconds=1).total_seconds())  # at() rounds up to the second
        done = finish(runtime, run_id)
    finally:
        runtime.stop()
    assert done["status"] == "COMPLETED" and done["tasks"]["after"]["output"] == "woke"
    left = [json.loads(scheduler.get_schedule(Name=s["Name"], GroupName=group)["Target"]["Input"])
            for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert [m.get("watch") for m in left] == [1]  # the wait's timer was deleted after it fired; after's watchdog waits


def test_a_pending_sqs_delayed_timer_survives_a_restart_of_the_pumps(aws):
    from infra.clock import SystemClock

    text = """
    workflow:
      metadata: {id: short_wait}
      tasks:
        - {id: pause, type: wait, config: {duration: 2s}}
    """
    runtime = LocalRuntime(aws, clock=SystemClock())
    run_id = start(runtime, text)
    assert runtime.run_until(lambda: view(runtime, run_id)["tasks"]["pause"]["status"] == "WAITING", 10)
    runtime.stop()
    runtime = LocalRuntime(aws, clock=SystemClock())
    try:
        done = finish(runtime, run_id, timeout=15)
    finally:
        runtime.stop()
    assert done["status"] == "COMPLETED"


def test_api_killed_after_the_callback_write_the_self_check_propagates(aws, clock, monkeypatch):
    """The callback POST writes (token used + task done), then dies before its fast-path enqueue:
    the delayed self-check it enqueued first finishes the job."""
    monkeypatch.setenv("LOOPLINE_SAFETY_DELAY_SECONDS", "1")
    text = """
    workflow:
      metadata: {id: cb_crash}
      tasks:
        - {id: hook, type: callback}
        - {id: after, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['v']"}}
    """
    runtime = LocalRuntime(aws, clock=clock)
    run_id = start(runtime, text)
    assert runtime.run_until(lambda: view(runtime, run_id)["callbacks"], 10)
    token = view(runtime, run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]

    boto3.setup_default_session(region_name="us-east-1")
    sends = []

    def die_on_fast_path(params, **_):
        sends.append(params.get("DelaySeconds", 0))
        if len(sends) == 2:  # the first send is the delayed self-check, the second the fast path
            raise SimulatedCrash("API killed after its write")

    boto3.DEFAULT_SESSION.events.register("before-parameter-build.sqs.SendMessage", die_on_fast_path)
    runtime.stop()
    runtime = LocalRuntime(aws, clock=clock)
    with runtime.lock, pytest.raises(SimulatedCrash):
        get_engine().submit_callback(token, {"v": 7})
    assert sends[0] >= 1 and sends[1] == 0
    boto3.DEFAULT_SESSION.events.unregister("before-parameter-build.sqs.SendMessage", die_on_fast_path)
    runtime.stop()

    runtime = LocalRuntime(aws, clock=clock)
    try:
        assert view(runtime, run_id)["tasks"]["hook"]["status"] == "COMPLETED"  # written before the crash
        done = finish(runtime, run_id, timeout=15)
    finally:
        runtime.stop()
    assert done["status"] == "COMPLETED" and done["tasks"]["after"]["output"] == 7


def test_api_killed_between_enqueueing_the_start_and_writing_the_run(aws, clock):
    """POST /runs enqueues `start` first: if it dies before writing the run, the worker writes it."""
    boto3.setup_default_session(region_name="us-east-1")

    def die_on_run_write(params, **_):
        if params.get("Item", {}).get("sk", {}).get("S") == "RUN":
            raise SimulatedCrash("API killed before writing the run")

    runtime = LocalRuntime(aws, clock=clock)
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb.PutItem", die_on_run_write)
    plan = compile_yaml(CHAIN)
    with runtime.lock, pytest.raises(SimulatedCrash):
        get_engine().start_run(plan, {}, run_id="crashed-start")
    boto3.DEFAULT_SESSION.events.unregister("before-parameter-build.dynamodb.PutItem", die_on_run_write)
    runtime.stop()

    runtime = LocalRuntime(aws, clock=clock)
    try:
        done = finish(runtime, "crashed-start")
    finally:
        runtime.stop()
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20}


POISON = {
    # a worker bug while running an email task: its exec message fails every delivery
    "exec": ("{id: huge, type: email, config: {to: [a@example.com], from: b@example.com, subject: s, body: b}}",
             TaskTypes, "run"),
    # a worker bug while recording a python task's result: the task runner's result fails every delivery
    "result": ("{id: huge, type: python, config: {code: 'result = 1'}}", execute.Outcomes, "succeed"),
}


@pytest.mark.parametrize("where", sorted(POISON))
def test_a_poison_message_reaches_the_dlq_and_the_run_shows_failed(runtime, monkeypatch, where):
    """A message that fails every delivery (here a worker bug on one task) is moved to the DLQ after
    5 receives; the dead-letter function marks the task FAILED and the run ends FAILED with the reason.
    (An oversized result would be the natural poison, but moto applies part of an over-size update
    before refusing it, which DynamoDB never does.)"""
    task, owner, name = POISON[where]
    real = getattr(owner, name)

    def buggy(*args, **kwargs):
        node = next(a for a in args if hasattr(a, "config") and hasattr(a, "deps"))
        if node.id == "huge":
            raise RuntimeError("a bug in the worker")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, buggy)
    run_id = start(runtime, f"""
    workflow:
      metadata: {{id: poison}}
      tasks:
        - {task}
        - {{id: after, type: python, depends_on: [huge], config: {{code: "result = 1"}}}}
    """)
    done = finish(runtime, run_id, timeout=60)
    assert done["status"] == "FAILED"
    assert done["tasks"]["huge"]["error"]["type"] == "PoisonMessage"
    assert "failed every delivery" in done["tasks"]["huge"]["error"]["message"]
    assert done["tasks"]["after"]["status"] == "CANCELLED"
    assert done["error"]["type"] == "PoisonMessage"

    # The dead-letter function succeeded (its log line included), so the DLQ holds nothing more.
    dlq = runtime.aws.stack.physical["DeadLetterQueue"]
    sqs = runtime.aws.client("sqs")

    def drained() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        return counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"

    assert runtime.run_until(drained, timeout=10)
