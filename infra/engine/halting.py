"""Stopping a run (cancel by request, the workflow's timeout) and the sub-workflow runs it waits for."""

from __future__ import annotations

from typing import Any

from statemachine.plan import Plan
from statemachine.status import RUN_ENDED, TASK_ENDED

from ..ports import RunRecord, StateStore, TaskRecord
from .journal import Journal
from .outcomes import Outcomes
from .plans import Plans


class Halting:
    def __init__(self, store: StateStore, plans: Plans, outcomes: Outcomes, journal: Journal):
        self.store = store
        self.journal = journal
        self.plans = plans
        self.outcomes = outcomes

    def halt_now(self, plan: Plan, run: RunRecord, reason_id: str, error: dict[str, Any]) -> None:
        """Nothing new starts, what has not finished is CANCELLED, then the run's end steps run."""
        why = f"stopping: {error.get('type')}" + (f" ({error['reason']})" if error.get("reason") else "")
        halted = self.store.halt_run(run.run_id, reason_id, error, note=None if run.halt else self.journal.note(why))
        if not run.halt and halted.halt:
            self.journal.run(run.run_id, halted.status, run.status, why)
        run = halted
        recs = self.store.list_tasks(run.run_id)
        for node in plan.nodes.values():
            rec = recs.get(node.id) or TaskRecord(node.id)
            if node.role == "flow" and node.loop_of is None and rec.status not in TASK_ENDED:
                self.outcomes.cancel_task(plan, run, node, rec)

    def halt_child(self, rec: TaskRecord, why: str) -> None:
        """Stop the sub-workflow run ``rec`` waited for (if it still runs)."""
        child = self.store.get_run(rec.child_run) if rec.child_run else None
        if child is not None and child.status not in RUN_ENDED and not child.halt:
            self.halt_now(self.plans.get(child.plan_hash), child, "$cancel", {"type": "Cancelled", "message": why})

    def cancel_run(self, run_id: str, reason: str | None = None) -> dict[str, Any] | None:
        """Stop a run by request: nothing new starts, unfinished tasks (and child runs) are CANCELLED,
        compensation marked on_cancel runs, then finally; the run ends CANCELLED. None: no such run."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        if run.status in RUN_ENDED or run.halt or run.rewinding is not None:  # a rewind's compensations: let them be
            return {"run_id": run_id, "status": run.status, "cancelled": False}
        self.halt_now(self.plans.get(run.plan_hash), run, "$cancel",
                      {"type": "Cancelled", "message": "the run was cancelled" + (f": {reason}" if reason else ""),
                       **({"reason": reason} if reason else {})})
        current = self.store.get_run(run_id)
        return {"run_id": run_id, "status": current.status if current else "CANCELLED", "cancelled": True}
