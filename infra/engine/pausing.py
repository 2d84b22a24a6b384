"""Pause and resume: a PAUSED run starts nothing new; what arrives meanwhile is parked, not lost.

Parking marks the task's item (``parked``) and keeps what its message carried (a role's
context), so resume can start it again; a timer that fires during the pause parks its task
too, and resume schedules its wake-up again (now, if its time has passed). Running tasks
finish normally while the run is paused; their dependents are parked when they arrive.
"""

from __future__ import annotations

from typing import Any

from statemachine.plan import Node, Plan
from statemachine.status import TASK_ENDED, RunStatus, TaskStatus

from ..ports import RunRecord, StateStore, TaskChange, TaskRecord
from .journal import Journal
from .keys import node_of
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans
from .run_end import RunEnd
from .waits import Waits


class Pausing:
    def __init__(self, store: StateStore, plans: Plans, messenger: Messenger, outcomes: Outcomes, waits: Waits,
                 run_end: RunEnd, journal: Journal):
        self.store = store
        self.journal = journal
        self.plans = plans
        self.messenger = messenger
        self.outcomes = outcomes
        self.waits = waits
        self.run_end = run_end

    def pause_run(self, run_id: str) -> dict[str, Any] | None:
        run = self.store.get_run(run_id)
        if run is None:
            return None
        paused = self.store.set_run_status(run_id, RunStatus.PAUSED, expected=RunStatus.RUNNING,
                                           note=self.journal.note("paused"))
        if paused:
            self.journal.run(run_id, RunStatus.PAUSED, RunStatus.RUNNING, "paused")
        return {"run_id": run_id, "status": RunStatus.PAUSED if paused else run.status, "changed": paused}

    def resume_run(self, run_id: str) -> dict[str, Any] | None:
        run = self.store.get_run(run_id)
        if run is None:
            return None
        if not self.store.set_run_status(run_id, RunStatus.RUNNING, expected=RunStatus.PAUSED,
                                         note=self.journal.note("resumed")):
            return {"run_id": run_id, "status": run.status, "changed": False}
        self.journal.run(run_id, RunStatus.RUNNING, RunStatus.PAUSED, "resumed")
        self.unpark_all(self.plans.get(run.plan_hash), run_id, self.store.list_tasks(run_id))
        return {"run_id": run_id, "status": RunStatus.RUNNING, "changed": True}

    def unpark_all(self, plan: Plan, run_id: str, recs: dict[str, TaskRecord]) -> None:
        """A run RUNNING again (resumed, or reopened by a rewind): start what was parked meanwhile (``recs``:
        its items, read once per operator's action), and end it if its last tasks finished while paused."""
        run = self.store.get_run(run_id)
        if run is None:
            return
        for key, rec in recs.items():
            if rec.parked and node_of(key) in plan.nodes:
                self._unpark(plan, run, plan.nodes[node_of(key)], rec)
        run = self.store.get_run(run_id) or run
        if run.sinks_remaining <= 0 and run.status == RunStatus.RUNNING:
            self.run_end.finalize(plan, run)  # the last tasks finished while it was paused

    def _unpark(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> None:
        change = TaskChange(status=rec.status, from_status=(rec.status,), set={"parked": None})
        rec, applied = self.outcomes.change(run.run_id, rec, change, "unparked: the run resumed")
        if not applied or rec.status in TASK_ENDED:
            return
        if rec.status == TaskStatus.WAITING:
            self.waits.ensure_wait(plan, run, node, rec)
        elif rec.status == TaskStatus.RETRYING:
            self.outcomes.schedule_retry(plan, run.run_id, node, rec)
        else:
            ctx = {k: v for k, v in (rec.role_ctx or {}).items() if k != "item"} or None
            self.messenger.send_exec(run.run_id, plan.hash, node.id, max(rec.attempt, 1), key=rec.task_id, ctx=ctx,
                                     epoch=rec.redrive)
