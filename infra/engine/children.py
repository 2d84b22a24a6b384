"""Sub-workflows: a child run of a registered workflow, which reports its end to its parent.

The child's run id derives from the parent task's key and attempt, so a redelivery that starts
it again finds it already there. The parent's task waits (nothing runs) until a `child_done`
message arrives; stopping the parent's task halts the child.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from statemachine.expressions import render
from statemachine.inputs import InputError, prepare_inputs
from statemachine.plan import TERMINAL, Node, Plan

from ..clock import iso
from ..ports import RunRecord, TaskChange, TaskRecord
from ..tasks.base import TaskFailure, TaskResult

RUN_ENDED = ("COMPLETED", "FAILED", "CANCELLED")


class ChildrenMixin:
    def _run_sub_workflow(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope, ctx) -> None:
        ref = node.config["workflow_ref"]
        child_plan = self.find_workflow(ref)
        if child_plan is None:
            raise TaskFailure("WorkflowNotFound", f"no registered workflow '{ref}'")
        inputs = render(node.config.get("inputs") or {}, scope, ctx)
        try:
            prepare_inputs(child_plan, inputs)
        except InputError as exc:
            raise TaskFailure("InvalidInput", f"sub-workflow '{ref}': {exc}") from exc
        self.save_plan(child_plan)
        deadline = self.clock.now() + timedelta(seconds=node.timeout) if node.timeout else None
        # After a redrive the task gets a new child run (the epoch in its id), not the old failed one.
        child_run = f"{run.run_id}-{rec.task_id}-{rec.attempt}" + (f"-r{rec.redrive}" if rec.redrive else "")
        change = TaskChange(status="WAITING", from_status=("RUNNING",), attempt=rec.attempt, set={
            "waiting_for": "child", "child_run": child_run,
            "child_plan": child_plan.hash, "child_inputs": inputs, "lease_until": None,
            "wake_at": iso(deadline) if deadline else None})
        new, applied = self._change(run.run_id, rec, change)
        if applied:
            self.ensure_wait(plan, run, node, new)

    def _start_child(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> None:
        """Idempotent: the start message and the run item are both keyed by the child's run id."""
        parent = {"run": run.run_id, "plan": plan.hash, "task": node.id, "key": rec.task_id, "attempt": rec.attempt}
        self.start_run(self.plan(rec.child_plan), rec.child_inputs or {}, run_id=rec.child_run, parent=parent)

    def _notify_parent(self, run: RunRecord) -> None:
        if run.parent:
            self.queue.send({"k": "child_done", **run.parent, "child": run.run_id})

    def _on_child_done(self, msg: dict[str, Any]) -> None:
        plan = self.plan(msg["plan"])
        node = plan.nodes[msg["task"]]
        run, rec, recs, extra = self.load_for(plan, msg["run"], node, msg["key"], node.deps)
        if run is None or run.status in RUN_ENDED or msg.get("child") != rec.child_run:
            return  # the run has ended (nothing moves then), or a child of before a redrive
        if rec.status in TERMINAL and rec.attempt == msg["attempt"]:
            self.propagate(plan, run.run_id, node, rec)  # a redelivery after the finishing write
            return
        if rec.status != "WAITING" or rec.waiting_for != "child" or rec.attempt != msg["attempt"]:
            return
        child = self.store.get_run(msg["child"])
        if child is None or child.status not in RUN_ENDED:
            return
        if child.status != "COMPLETED":
            error = child.error or {}
            self.fail(plan, run, node, rec, TaskFailure(
                error.get("type") or "SubWorkflowFailed",
                f"sub-workflow run {child.run_id} {child.status}: {error.get('message', '')}"), from_status="WAITING")
            return
        output = child.outputs
        if node.config.get("outputs"):
            scope = self.scope_for(run, recs, node.deps, extra={
                **(extra or {}), "child": {"outputs": child.outputs, "status": child.status, "run_id": child.run_id}})
            output = render(node.config["outputs"], scope, self.eval_context(rec))
        self.succeed(plan, run, node, rec, TaskResult(output), from_status="WAITING")

    def halt_now(self, plan: Plan, run: RunRecord, reason_id: str, error: dict[str, Any]) -> None:
        """Stop a run: nothing new starts, what has not finished is CANCELLED, then its end steps run."""
        run = self.store.halt_run(run.run_id, reason_id, error)
        recs = self.store.list_tasks(run.run_id)
        for node in plan.nodes.values():
            rec = recs.get(node.id) or TaskRecord(node.id)
            if node.role == "flow" and node.loop_of is None and rec.status not in TERMINAL:
                self.cancel_task(plan, run, node, rec)

    def _halt_child(self, rec: TaskRecord, why: str) -> None:
        child = self.store.get_run(rec.child_run) if rec.child_run else None
        if child is not None and child.status not in RUN_ENDED and not child.halt:
            self.halt_now(self.plan(child.plan_hash), child, "$cancel", {"type": "Cancelled", "message": why})

    def cancel_run(self, run_id: str) -> dict[str, Any] | None:
        """Stop a run by request: nothing new starts, unfinished tasks (and child runs) are CANCELLED,
        compensation marked on_cancel runs, then finally; the run ends CANCELLED. None: no such run."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        if run.status in RUN_ENDED or run.halt:
            return {"run_id": run_id, "status": run.status, "cancelled": False}
        self.halt_now(self.plan(run.plan_hash), run, "$cancel",
                      {"type": "Cancelled", "message": "the run was cancelled"})
        current = self.store.get_run(run_id)
        return {"run_id": run_id, "status": current.status if current else "CANCELLED", "cancelled": True}
