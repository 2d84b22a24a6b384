"""The Expense Report of seed 000 (examples/expense_report.yaml): its three outcomes on the embedded stack.

The 3-day deadline is reached in seconds with the runtime's movable clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.tasks import outbox
from infra.wiring import get_engine
from statemachine.compiler import load_and_compile
from tests.e2e.test_invariants import finish, view
from tests.e2e.test_seed_examples import outside  # noqa: F401  (the payment gateway stand-in)

EXPENSE = Path(__file__).resolve().parents[2] / "examples" / "expense_report.yaml"


@pytest.fixture
def submitted(runtime, outside):  # noqa: F811
    url, seen = outside
    outbox.clear()
    with runtime.lock:
        run_id = get_engine().start_run(load_and_compile(EXPENSE), {"payment_api": url})
    assert runtime.run_until(lambda: view(runtime, run_id)["approvals"], 10)
    return run_id, seen


def statuses(done):
    return {k: t["status"] for k, t in done["tasks"].items()}


def decide(runtime, run_id, decision, comments):
    entry = view(runtime, run_id)["approvals"][0]
    assert entry["approver"] == "manager@company.com"
    assert entry["title"] == "Approve expense report exp-test-123 for $500?"
    with runtime.lock:
        get_engine().decide(entry["url"].rsplit("/", 1)[1], decision, comments)


def test_approved_pays_and_notifies_in_parallel_then_closes(runtime, submitted):
    run_id, seen = submitted
    decide(runtime, run_id, "APPROVED", "ok")
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED"
    assert statuses(done) == {
        "save_report": "COMPLETED", "request_manager_approval": "COMPLETED", "check_approval": "COMPLETED",
        "run_payment": "COMPLETED", "record_payment": "SKIPPED", "notify_employee_approved": "COMPLETED",
        "process_approved_branch": "COMPLETED",
        "check_denial_or_timeout": "SKIPPED", "escalate_to_finance": "SKIPPED", "notify_employee_denied": "SKIPPED",
        "close_report": "COMPLETED"}
    assert [r["body"] for r in seen if r["path"] == "/pay"] == [{"report": "exp-test-123", "amount": 500}]
    sent = {e["request"]["subject"]: e["request"]["to"] for e in outbox.entries("email")}
    assert sent["Your expense report was approved."] == ["employee@company.com"]
    assert done["outputs"] == {"decision": "APPROVED",
                               "closed": {"report": "exp-test-123", "closed_after": "APPROVED"}}


def test_denied_notifies_the_employee_then_closes(runtime, submitted):
    run_id, seen = submitted
    decide(runtime, run_id, "REJECTED", "Receipts missing.")
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED"
    assert statuses(done)["notify_employee_denied"] == "COMPLETED"
    assert statuses(done)["process_approved_branch"] == "SKIPPED" and statuses(done)["run_payment"] == "SKIPPED"
    assert statuses(done)["escalate_to_finance"] == "SKIPPED"
    assert not [r for r in seen if r["path"] == "/pay"]
    denied = [e for e in outbox.entries("email") if e["request"]["subject"] == "Your expense report was denied."]
    assert denied[0]["request"]["body"] == "Receipts missing."
    assert done["outputs"]["closed"]["closed_after"] == "REJECTED"


def test_three_days_without_an_answer_escalate_to_finance(runtime, submitted, clock):
    run_id, seen = submitted
    clock.advance(3 * 86400 + 1)
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED"
    assert done["tasks"]["request_manager_approval"]["output"]["decision"] == "TIMED_OUT"
    assert statuses(done)["escalate_to_finance"] == "COMPLETED"
    assert statuses(done)["notify_employee_denied"] == "SKIPPED"
    overdue = [e for e in outbox.entries("email") if e["request"]["to"] == ["finance_queue@company.com"]]
    assert overdue and overdue[0]["request"]["subject"] == "Overdue report exp-test-123"
    assert done["outputs"]["closed"]["closed_after"] == "TIMED_OUT"
