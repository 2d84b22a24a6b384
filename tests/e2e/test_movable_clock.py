"""Under a movable clock (`loopline dev --movable-clock`: the embedded runtime on a ManualClock) the
engine's waits follow that clock: a retry's backoff is a timer on it, due when the clock is moved and
not before, and the outbox stamps the clock's time, not the wall clock's."""

from __future__ import annotations

import logging

from infra.clock import iso
from infra.tasks import outbox
from infra.wiring import get_engine
from statemachine.compiler import compile_workflow
from tests.e2e.test_invariants import finish, view

ASK = """
workflow:
  metadata: {id: hooked}
  tasks:
    - id: ask
      type: approval
      config: {approvers: [ann@example.com], channels: [webhook], title: "Go?", timeout: 1d}
"""

MAIL = """
workflow:
  metadata: {id: mailed}
  tasks:
    - id: tell
      type: email
      config: {to: [ann@example.com], subject: Hello, body: "from the future"}
"""


def start(runtime, text: str) -> str:
    with runtime.lock:
        return get_engine().start_run(compile_workflow(text, "flow.yaml"), {})


def test_a_notifications_retry_waits_for_the_movable_clock(runtime, clock, monkeypatch, caplog):
    # Nothing listens at the deployment's webhook (and loopback is refused anyway): every try fails.
    monkeypatch.setenv("LOOPLINE_APPROVAL_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    runtime.restart_functions()
    caplog.set_level(logging.WARNING, logger="infra.engine.approvals")

    def tried(n: int) -> bool:
        return f"by webhook failed (try {n})" in caplog.text

    run_id = start(runtime, ASK)
    assert runtime.run_until(lambda: tried(1), 20), caplog.text
    # The first backoff is 2 s: as a queue delay it would come due by the real clock, in 3.5 s here.
    assert not runtime.run_until(lambda: tried(2), 3.5), "the retry followed the real clock"
    clock.advance(3)  # (a schedule has whole seconds: 2 s from now, rounded up)
    assert runtime.run_until(lambda: tried(2), 20), caplog.text
    assert not tried(3)
    assert view(runtime, run_id)["tasks"]["ask"]["status"] == "WAITING"  # the request is never lost


def test_the_outbox_stamps_the_movable_clocks_time(runtime, clock):
    outbox.clear()
    clock.advance(days=10)  # far from the wall clock
    done = finish(runtime, start(runtime, MAIL))
    assert done["status"] == "COMPLETED"
    [entry] = outbox.entries("email")
    assert entry["at"] == iso(clock.now())  # the clock stands still unless moved


FLAKY = """
workflow:
  metadata: {id: flaky}
  tasks:
    - id: flaky
      type: python
      retry: {max_attempts: 2, strategy: fixed, delay: 1h}
      config: {code: "raise ValueError('down')"}
"""


def test_a_tasks_retry_backoff_is_a_timer_on_the_movable_clock(runtime, clock):
    run_id = start(runtime, FLAKY)
    assert runtime.run_until(lambda: view(runtime, run_id)["tasks"]["flaky"]["status"] == "RETRYING", 30)
    assert not runtime.run_until(lambda: view(runtime, run_id)["tasks"]["flaky"]["attempts"] == 2, 1.5)
    clock.advance(3601)  # an hour's backoff, due at once
    done = finish(runtime, run_id)
    assert done["status"] == "FAILED" and done["tasks"]["flaky"]["attempts"] == 2
