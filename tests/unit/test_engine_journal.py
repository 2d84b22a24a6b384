"""Every applied transition yields a typed record: what changed, why, and which message or request caused it."""

from __future__ import annotations

import logging

from infra.engine.journal import KeptTransitions, LoggedTransitions
from statemachine.events import CauseKind, RunTransition, TaskTransition
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, start

CHAIN = """
workflow:
  metadata: {id: journal}
  tasks:
    - {id: a, type: wait, config: {duration: 1s}}
    - {id: b, type: wait, config: {duration: 0s}, depends_on: [a]}
    - {id: c, type: wait, config: {duration: 0s}, depends_on: [b], when: false}
"""

RETRIED = """
workflow:
  metadata: {id: journal_retry}
  tasks:
    - id: flaky
      type: python
      retry: {max_attempts: 2, delay: 1s}
      config: {code: "raise ConnectionError('down')"}
"""


def _task_steps(events, item):
    return [(e.previous, e.status, e.cause.name if e.cause else None) for e in events
            if isinstance(e, TaskTransition) and e.item == item]


def test_a_run_yields_one_record_per_transition_with_its_cause(local, clock):
    run_id = start(local, CHAIN)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    events = local.transitions.of_run(run_id)
    runs = [(e.previous, e.status, e.cause.kind) for e in events if isinstance(e, RunTransition)]
    assert runs == [(None, "RUNNING", CauseKind.REQUEST), ("RUNNING", "COMPLETED", CauseKind.MESSAGE)]
    assert _task_steps(events, "a") == [("PENDING", "RUNNING", "exec"), ("RUNNING", "WAITING", "exec"),
                                        ("WAITING", "COMPLETED", "wake")]
    # A wait already due is claimed and ended in one write: one transition, saying so.
    assert _task_steps(events, "b") == [("PENDING", "COMPLETED", "exec")]
    assert [e.reason for e in events if isinstance(e, TaskTransition) and e.item == "b"] == ["completed at its claim"]
    skipped = [e for e in events if isinstance(e, TaskTransition) and e.item == "c"]
    assert [(e.status, e.reason) for e in skipped] == [("SKIPPED", "skipped by its when/skip_if")]
    waiting = next(e for e in events if isinstance(e, TaskTransition) and e.status == "WAITING")
    assert waiting.reason.startswith("waiting until ") and waiting.cause.subject == "a attempt 1"
    assert all(e.at for e in events)


def test_a_duplicate_delivery_applies_nothing_and_records_nothing(local, clock):
    run_id = start(local, CHAIN)
    deliver_twice(local)
    drive(local, run_id, clock)
    statuses = [(e.item, e.status) for e in local.transitions.of_run(run_id) if isinstance(e, TaskTransition)]
    assert len(statuses) == len(set(statuses)) == 5  # each change once, however often its message came


def test_a_retry_says_why_and_a_cancel_names_the_request(local, clock):
    run_id = start(local, RETRIED)
    settle(local, run_id)
    retry = next(e for e in local.transitions.of_run(run_id) if e.status == "RETRYING")
    assert retry.reason.startswith("ConnectionError: attempt 2 in ") and retry.cause.kind is CauseKind.RESULT
    local.engine.cancel_run(run_id)
    drive(local, run_id, clock)
    stopping = [e for e in local.transitions.of_run(run_id) if isinstance(e, RunTransition)][1]
    assert stopping.reason == "stopping: Cancelled" and stopping.cause.kind is CauseKind.REQUEST
    assert stopping.cause.name == "cancel" and stopping.cause.subject == run_id


def test_kept_transitions_are_bounded_and_the_default_sink_logs_at_debug(caplog):
    kept = KeptTransitions(limit=2)
    for status in ("RUNNING", "PAUSED", "RUNNING"):
        kept.record(RunTransition("r", status, None, "x", "t", None))
    assert [e.status for e in kept.events] == ["PAUSED", "RUNNING"]
    with caplog.at_level(logging.DEBUG, logger="loopline.transitions"):
        LoggedTransitions().record(RunTransition("r", "RUNNING", None, "started", "t", None))
    assert '"status": "RUNNING"' in caplog.text and '"event": "RunTransition"' in caplog.text
