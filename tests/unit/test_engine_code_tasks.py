"""Code tasks run in the task runner (issue #9): dispatched by the worker, their result bound to one attempt.

Local mode on the in-memory adapters, code run inline (at once, in the dispatching thread): every
message is handed to the engine by the test, so each step of an attempt can be looked at.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from infra.clock import parse_iso
from infra.dispatch.jobs import new_token, token_hash
from infra.engine.code_tasks import WATCH_DELAY
from infra.sandbox.request import MAX_PRINTED
from infra.tasks import outbox
from loopline.memory.task_dispatch import LEASE_MARGIN  # local mode's dispatch
from tests.unit.test_engine_semantics import drive, start

CHAIN = """
workflow:
  metadata: {id: chain}
  tasks:
    - {id: a, type: python, timeout: 100, config: {code: "result = 2"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] * 10"}}
  outputs: {mappings: {b: "${tasks.b.output}"}}
"""


@pytest.fixture(autouse=True)
def each_message_by_hand(local):
    """Every ready task through the queue (none carried on, carry_on.py), so that each message of an
    attempt can be handed to the engine, and held back, by the test."""
    local.engine.carry_on.limit = 0


class Crash(BaseException):
    """The process dies here."""


def step(local) -> dict:
    """Hand the engine the next due ready-queue message; returns it."""
    message = local.queue.receive()
    assert message is not None
    local.engine.handle(message)
    return message


def a_dispatched(local, clock) -> tuple[str, dict, str]:
    """A run of CHAIN whose task a was dispatched: (run id, a's exec message, the result record)."""
    run_id = start(local, CHAIN)
    step(local)  # start
    exec_a = step(local)
    assert exec_a["k"] == "exec" and exec_a["task"] == "a"
    body = local.results.receive_body()
    assert body is not None and local.results.receive_body() is None
    return run_id, exec_a, body


def task(local, run_id, task_id):
    return local.store.list_tasks(run_id)[task_id]


def forged(body: str, **changes) -> str:
    record = json.loads(body)
    payload = record["requestPayload"]
    payload["token"] = changes.pop("token", payload["token"])
    payload["attempt"].update(changes.pop("attempt", {}))
    if "output" in changes:
        record["responsePayload"]["reply"]["output"] = changes.pop("output")
    return json.dumps(record)


def test_the_worker_claims_arms_a_watchdog_and_dispatches_then_the_result_completes_it(local, clock, actions):
    run_id, _, body = a_dispatched(local, clock)
    rec = task(local, run_id, "a")
    assert rec.status == "RUNNING" and rec.attempt == 1 and len(rec.token_hash) == 64
    lease = clock.now() + timedelta(seconds=100 + LEASE_MARGIN)  # the code's timeout, plus the margin
    assert timedelta(0) <= lease - parse_iso(rec.lease_until) < timedelta(milliseconds=1)  # stored to the ms
    assert local.queue.next_due() == lease + timedelta(seconds=WATCH_DELAY)  # the watchdog, nothing else
    assert actions == ["a"]  # the code ran in the task runner, not while the worker held the message
    assert json.loads(body)["requestPayload"]["token"] not in repr(rec)  # only its hash is kept
    assert local.engine.accept_result(body) == "completed"
    assert task(local, run_id, "a").status == "COMPLETED" and task(local, run_id, "a").output == 2
    assert drive(local, run_id, clock)["outputs"] == {"b": 20}


def test_a_forged_result_is_dropped_and_the_run_is_unaffected(local, clock, actions):
    run_id, _, body = a_dispatched(local, clock)
    before = task(local, run_id, "a")
    assert local.engine.accept_result(forged(body, token=new_token(), output=666)).startswith("dropped")
    # the real token, but another task's coordinates (b has not even started)
    assert local.engine.accept_result(forged(body, attempt={"task": "b", "key": "b"}, output=666)) \
        .startswith("dropped")
    assert local.engine.accept_result(forged(body, attempt={"attempt": 2}, output=666)).startswith("dropped")
    assert local.engine.accept_result(json.dumps({"k": "exec", "run": run_id, "plan": "x", "task": "b",
                                                  "attempt": 1})).startswith("dropped")
    assert task(local, run_id, "a") == before and "b" not in local.store.list_tasks(run_id)
    assert local.engine.accept_result(body) == "completed"
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["outputs"] == {"b": 20} and actions == ["a", "b"]


def test_a_repeated_result_carries_the_run_on_and_changes_nothing(local, clock, actions):
    run_id, _, body = a_dispatched(local, clock)
    assert local.engine.accept_result(body) == "completed"
    done = task(local, run_id, "a")
    assert local.engine.accept_result(body) == "replayed: already COMPLETED"
    assert task(local, run_id, "a") == done
    assert drive(local, run_id, clock)["outputs"] == {"b": 20} and actions == ["a", "b"]


def test_a_duplicate_exec_while_the_runner_works_is_dropped_not_returned(local, clock, actions):
    run_id, exec_a, _ = a_dispatched(local, clock)
    rec = task(local, run_id, "a")
    local.engine.handle(exec_a)  # no Busy: the message is done, a watchdog is pending
    assert task(local, run_id, "a") == rec and local.results.receive_body() is None and actions == ["a"]


def test_a_runner_that_never_answers_is_taken_over_by_the_watchdog_and_its_late_answer_refused(
        local, clock, actions):
    run_id, _, lost = a_dispatched(local, clock)  # the record never reaches the result queue
    first = task(local, run_id, "a")
    clock.advance((parse_iso(first.lease_until) - clock.now()).total_seconds() + WATCH_DELAY + 0.01)
    watchdog = step(local)
    assert watchdog.get("watch") == 1
    second = task(local, run_id, "a")
    assert second.attempt == 1 and second.token_hash != first.token_hash  # a takeover: new token, same attempt
    assert parse_iso(second.lease_until) > parse_iso(first.lease_until)
    assert local.engine.accept_result(lost).startswith("dropped: the token")  # the first runner, too late
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["a"]["attempts"] == 1
    assert actions == ["a", "a", "b"]  # at least once: the code ran again


def test_the_worker_dying_after_the_claim_before_the_dispatch_is_healed_by_the_watchdog(
        local, clock, actions, monkeypatch):
    run_id = start(local, CHAIN)
    step(local)
    exec_a = local.queue.receive()
    real = local.dispatch.dispatch

    def dies(*args):
        raise Crash("the worker died before its invoke")

    monkeypatch.setattr(local.dispatch, "dispatch", dies)
    with pytest.raises(Crash):
        local.engine.handle(exec_a)
    monkeypatch.setattr(local.dispatch, "dispatch", real)
    assert task(local, run_id, "a").status == "RUNNING" and actions == []
    local.engine.handle(exec_a)  # SQS delivers it again: the lease holds, the watchdog will come
    assert actions == [] and local.results.receive_body() is None
    view = drive(local, run_id, clock)  # the clock is moved to the watchdog
    assert view["status"] == "COMPLETED" and view["tasks"]["a"]["attempts"] == 1 and actions == ["a", "b"]


def test_a_watchdog_of_a_finished_attempt_changes_nothing(local, clock):
    run_id, _, body = a_dispatched(local, clock)
    local.engine.accept_result(body)
    while local.queue.next_due() is not None and local.queue.next_due() <= clock.now():
        step(local)  # b runs; its result waits
    tasks = local.store.list_tasks(run_id)
    clock.advance(100 + LEASE_MARGIN + WATCH_DELAY)
    watchdog = step(local)
    assert watchdog.get("watch") == 1 and watchdog["task"] == "a"
    assert local.store.list_tasks(run_id) == tasks


def test_a_runner_failure_fails_the_attempt_by_the_tasks_retry_policy(local, clock, actions):
    run_id = start(local, """
        workflow:
          metadata: {id: retried}
          tasks:
            - {id: a, type: python, retry: {max_attempts: 2, delay: 1s}, config: {code: "result = 'ok'"}}
        """)
    step(local)
    step(local)
    record = json.loads(local.results.receive_body())
    # What Lambda sends when the runner is stopped at its timeout: the job, and the failure.
    record["requestContext"]["condition"] = "RetriesExhausted"
    record["responseContext"]["functionError"] = "Unhandled"
    record["responsePayload"] = {"errorMessage": "2026-01-01T00:00:00.000Z r Task timed out after 900.00 seconds"}
    assert local.engine.accept_result(json.dumps(record)) == "failed: TaskTimeout"
    rec = task(local, run_id, "a")
    assert rec.status == "RETRYING" and rec.error["type"] == "TaskTimeout"
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["a"]["attempts"] == 2 and actions == ["a", "a"]


def test_a_code_task_whose_request_cannot_be_built_fails_without_a_dispatch(local, clock, actions):
    run_id = start(local, """
        workflow:
          metadata: {id: bad}
          tasks:
            - {id: s, type: shell, config: {command: "${inputs.missing.deeper}"}}
        """)
    view = drive(local, run_id, clock)
    assert view["status"] == "FAILED" and view["tasks"]["s"]["error"]["type"] == "ExpressionError"
    assert actions == [] and local.results.receive_body() is None


def test_a_code_task_behind_an_approval_waits_first_then_is_dispatched(local, clock, actions):
    run_id = start(local, """
        workflow:
          metadata: {id: gated}
          tasks:
            - {id: g, type: python, requires_approval: {approvers: [a@example.com]}, config: {code: "result = 5"}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["g"]["status"] == "WAITING" and actions == []
    local.engine.decide(view["approvals"][0]["url"].rsplit("/", 1)[1], "APPROVED")
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["g"]["output"] == 5 and actions == ["g"]


EMAIL = """
workflow:
  metadata: {id: mail}
  tasks:
    - {id: m, type: email, config: {to: [a@example.com], from: b@example.com, subject: hi, body: there}}
"""


def test_a_worker_task_is_not_started_with_too_little_time_left(local, clock):
    outbox.clear()
    run_id = start(local, EMAIL)
    step(local)
    exec_m = local.queue.receive()
    local.engine.handle(exec_m, time_left=lambda: 20.0)  # the email may take 25 s (MAX_WORKER_TASK_TIMEOUT)
    assert "m" not in local.store.list_tasks(run_id) and outbox.entries("email") == []  # not claimed, not sent
    again = local.queue.receive()  # handed back at once, not after a visibility timeout
    assert again == {**exec_m, "handed_back": 1}
    local.engine.handle(again, time_left=lambda: 29.0)
    assert task(local, run_id, "m").status == "COMPLETED" and len(outbox.entries("email")) == 1


def test_code_tasks_and_waits_take_none_of_the_workers_time(local, clock, actions):
    run_id = start(local, CHAIN)
    step(local)
    local.engine.handle(local.queue.receive(), time_left=lambda: 0.5)
    assert task(local, run_id, "a").status == "RUNNING" and actions == ["a"]


def test_a_forged_token_hash_in_the_store_is_never_read_back_as_a_token(local, clock):
    """The store holds the hash only: a result carrying the stored value itself is refused."""
    run_id, _, body = a_dispatched(local, clock)
    stored = task(local, run_id, "a").token_hash
    assert token_hash(json.loads(body)["requestPayload"]["token"]) == stored
    assert local.engine.accept_result(forged(body, token=stored)).startswith("dropped")


def test_what_the_code_printed_is_kept_with_its_attempt_and_shown(local, clock):
    """Item 10: the attempt that ended last keeps what its code printed (bounded, infra/sandbox); a new
    attempt starts without it; the run view shows it as ``printed``."""
    run_id = start(local, """
        workflow:
          metadata: {id: printing}
          tasks:
            - id: flaky
              type: python
              retry: {max_attempts: 2, delay: 1s}
              config: {code: "print('attempt', variables.get('n', 0)); raise ValueError('no')"}
            - {id: fine, type: python, config: {code: "print('hello'); print('x' * 20000); result = 1"}}
            - {id: quiet, type: python, config: {code: "result = 2"}}
        """)
    view = drive(local, run_id, clock)
    assert view["tasks"]["flaky"]["printed"].startswith("attempt 0\n") and view["tasks"]["flaky"]["attempts"] == 2
    assert "ValueError: no" in view["tasks"]["flaky"]["printed"]  # its stderr too
    printed = view["tasks"]["fine"]["printed"]
    assert printed.endswith("x" * 1000 + "\n") and len(printed.encode()) < MAX_PRINTED + 100  # its end, bounded
    assert "printed" not in view["tasks"]["quiet"]  # nothing printed: no key


def test_a_new_attempt_starts_without_the_last_ones_print_out(local, clock):
    run_id = start(local, """
        workflow:
          metadata: {id: reprint}
          tasks:
            - id: a
              type: python
              retry: {max_attempts: 2, delay: 1s}
              config: {code: "print('first'); raise ValueError('no')"}
        """)
    step(local)
    step(local)
    local.engine.accept_result(local.results.receive_body())
    assert task(local, run_id, "a").printed.startswith("first\n")  # kept with the failed attempt
    clock.advance(2)
    step(local)  # the retry: claimed, dispatched; its result not yet taken
    rec = task(local, run_id, "a")
    assert rec.status == "RUNNING" and rec.attempt == 2 and rec.printed is None


def test_a_message_handed_back_too_often_runs_anyway(local, clock):
    """A worker that can never fit the task (a misconfigured timeout) must not pass it around for ever."""
    outbox.clear()
    run_id = start(local, EMAIL)
    step(local)
    exec_m = local.queue.receive()
    local.engine.handle({**exec_m, "handed_back": 5}, time_left=lambda: 1.0)
    assert task(local, run_id, "m").status == "COMPLETED" and len(outbox.entries("email")) == 1
