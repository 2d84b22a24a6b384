"""Pause and resume: a PAUSED run starts nothing new; what arrives meanwhile is parked, not lost.

Parking marks the task's item (``parked``) and keeps what its message carried (a role's
context), so resume can start it again; a timer that fires during the pause parks its task
too, and resume schedules its wake-up again (now, if its time has passed). Running tasks
finish normally while the run is paused; their dependents are parked when they arrive.
"""

from __future__ import annotations

from typing import Any

from statemachine.plan import TERMINAL, Node, Plan

from ..ports import TaskChange, TaskRecord
from .messages import node_of


class PausingMixin:
    def pause_run(self, run_id: str) -> dict[str, Any] | None:
        run = self.store.get_run(run_id)
        if run is None:
            return None
        paused = self.store.set_run_status(run_id, "PAUSED", expected="RUNNING")
        return {"run_id": run_id, "status": "PAUSED" if paused else run.status, "changed": paused}

    def resume_run(self, run_id: str) -> dict[str, Any] | None:
        run = self.store.get_run(run_id)
        if run is None:
            return None
        if not self.store.set_run_status(run_id, "RUNNING", expected="PAUSED"):
            return {"run_id": run_id, "status": run.status, "changed": False}
        plan = self.plan(run.plan_hash)
        run = self.store.get_run(run_id)
        for key, rec in self.store.list_tasks(run_id).items():  # once per resume: an operator's action
            if rec.parked and node_of(key) in plan.nodes:
                self._unpark(plan, run, plan.nodes[node_of(key)], rec)
        run = self.store.get_run(run_id)
        if run.sinks_remaining <= 0 and run.status == "RUNNING":
            self.finalize(plan, run)  # the last tasks finished while it was paused
        return {"run_id": run_id, "status": "RUNNING", "changed": True}

    def park(self, run, node: Node, rec: TaskRecord, msg: dict[str, Any]) -> None:
        """Leave a task as it is, marked to be started again by resume."""
        status = rec.status
        change = TaskChange(status=status, from_status=(None, "PENDING") if status == "PENDING" else (status,),
                            set={"parked": True, **({"role_ctx": msg["ctx"]} if msg.get("ctx") and not rec.role_ctx
                                                    else {})})
        self._change(run.run_id, rec, change)

    def _unpark(self, plan: Plan, run, node: Node, rec: TaskRecord) -> None:
        change = TaskChange(status=rec.status, from_status=(rec.status,), set={"parked": None})
        rec, applied = self._change(run.run_id, rec, change)
        if not applied or rec.status in TERMINAL:
            return
        if rec.status == "WAITING":
            self.ensure_wait(plan, run, node, rec)
        elif rec.status == "RETRYING":
            self._schedule_retry(plan, run.run_id, node, rec)
        else:
            ctx = {k: v for k, v in (rec.role_ctx or {}).items() if k != "item"} or None
            self.enqueue_exec(run.run_id, plan.hash, node.id, max(rec.attempt, 1), key=rec.task_id, ctx=ctx,
                              epoch=rec.redrive)
