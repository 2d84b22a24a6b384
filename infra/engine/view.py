"""The run as the contract shows it (`loopline run --json`, `GET /runs/{id}`)."""

from __future__ import annotations

from typing import Any

from ..ports import TaskRecord


class ViewMixin:
    def describe_run(self, run_id: str, base_url: str | None = None) -> dict[str, Any] | None:
        """``base_url`` prefixes approval/callback links when the deployment has no public URL set."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        plan = self.plan(run.plan_hash)
        recs = self.store.list_tasks(run_id)
        tasks: dict[str, Any] = {}
        approvals: list[dict[str, Any]] = []
        callbacks: list[dict[str, Any]] = []
        for task_id in plan.nodes:
            rec = recs.get(task_id) or TaskRecord(task_id)
            attempts = rec.attempt - 1 if rec.status == "RETRYING" else rec.attempt
            tasks[task_id] = {"status": rec.status, "output": rec.output, "attempts": attempts, "error": rec.error}
            if rec.status == "WAITING" and rec.waiting_for in ("approval", "callback") and run.status == "RUNNING":
                entry = {"task_id": task_id, "url": self.link_url(run_id, rec, base_url)}
                if rec.waiting_for == "approval":
                    request = rec.approval or {}
                    approvers = request.get("approvers") or []
                    entry["title"] = request.get("title") or plan.nodes[task_id].name or task_id
                    if approvers:
                        entry["approver"] = approvers[0]
                    entry["deadline"] = rec.wake_at
                    approvals.append(entry)
                else:
                    entry["deadline"] = rec.wake_at
                    callbacks.append(entry)
        return {
            "run_id": run.run_id,
            "workflow_id": run.workflow_id,
            "status": run.status,
            "outputs": run.outputs,
            "error": run.error if run.status in ("FAILED", "CANCELLED") else None,
            "tasks": tasks,
            "approvals": approvals,
            "callbacks": callbacks,
            "created_at": run.created_at,
            "ended_at": run.ended_at,
        }

    def link_url(self, run_id: str, rec: TaskRecord, base_url: str | None = None) -> str:
        token = self.signer.token(run_id, rec.task_id, rec.attempt, rec.waiting_for, rec.nonce)
        path = "approvals" if rec.waiting_for == "approval" else "callbacks"
        base = self.settings.public_url or base_url or ""
        return f"{base.rstrip('/')}/{path}/{token}"
