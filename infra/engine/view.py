"""The run as the contract shows it (`loopline run --json`, `GET /runs/{id}`)."""

from __future__ import annotations

from typing import Any

from ..ports import TaskRecord
from .messages import node_of

RUN_ENDED = ("COMPLETED", "FAILED", "CANCELLED")
REFUSALS_SHOWN = 5  # per task, as infra/engine/approvals.py keeps them


class ViewMixin:
    def describe_run(self, run_id: str, base_url: str | None = None) -> dict[str, Any] | None:
        """``base_url`` prefixes approval/callback links when the deployment has no public URL set."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        plan = self.plan(run.plan_hash)
        recs = self.store.list_tasks(run_id)
        latest: dict[str, TaskRecord] = {}
        for key, rec in recs.items():  # a role task shows its latest instance
            node = plan.nodes.get(node_of(key))
            if rec.status == "PENDING" and node is not None and node.role != "flow":
                continue  # an instance a redrive reset and nothing needed since: as if there were none
            current = latest.get(node_of(key))
            if current is None or (rec.started_at or "") >= (current.started_at or ""):
                latest[node_of(key)] = rec
        tasks: dict[str, Any] = {}
        for task_id, node in plan.nodes.items():
            rec = latest.get(task_id)
            if rec is None:
                # A role that was never needed ends SKIPPED with the run (dsl.md).
                status = "SKIPPED" if node.role != "flow" and run.status in RUN_ENDED else "PENDING"
                rec = TaskRecord(task_id, status=status)
            attempts = rec.attempt - 1 if rec.status == "RETRYING" else rec.attempt
            tasks[task_id] = {"status": rec.status, "output": rec.output, "attempts": attempts, "error": rec.error}
            if rec.printed:  # what a code task's code printed, in the attempt that ended last
                tasks[task_id]["printed"] = rec.printed
        approvals: list[dict[str, Any]] = []
        callbacks: list[dict[str, Any]] = []
        if run.status not in RUN_ENDED:
            for key, rec in recs.items():
                if rec.status != "WAITING" or rec.waiting_for not in ("approval", "callback"):
                    continue
                if rec.waiting_for == "callback":
                    callbacks.append({"task_id": node_of(key), "url": self.link_url(run_id, rec, base_url),
                                      "deadline": rec.wake_at})
                    continue
                request = rec.approval or {}
                voted = {v["approver"] for v in self.votes(run_id, rec)}
                for who, token in self.approval_links(run_id, rec):  # one link per approver yet to decide
                    if who not in voted:
                        url = self.link_url(run_id, rec, base_url, token)
                        approvals.append({
                            "task_id": node_of(key), "key": key, "approver": who, "url": url,
                            "title": request.get("title") or plan.nodes[node_of(key)].name or node_of(key),
                            "deadline": rec.wake_at, "round": request.get("round", 0)})
        refused, refused_count = refused_links(recs)
        return {
            "run_id": run.run_id,
            "workflow_id": run.workflow_id,
            "status": run.status,
            "outputs": run.outputs,
            "error": run.error if run.status in ("FAILED", "CANCELLED") else None,
            "tasks": tasks,
            "approvals": approvals,
            "callbacks": callbacks,
            "refused_links": refused,  # the last few refused uses of each task's links, oldest first
            "refused_count": refused_count,  # all of them
            "created_at": run.created_at,
            "ended_at": run.ended_at,
            "redrives": run.redrives,  # times it was redriven (POST /runs/{id}/redrive)
        }

    def link_url(self, run_id: str, rec: TaskRecord, base_url: str | None = None, token: str | None = None) -> str:
        token = token or self.signer.token(run_id, rec.task_id, rec.attempt, rec.waiting_for, rec.nonce)
        path = "approvals" if rec.waiting_for == "approval" else "callbacks"
        base = self.settings.public_url or base_url or ""
        return f"{base.rstrip('/')}/{path}/{token}"


def refused_links(recs: dict[str, TaskRecord]) -> tuple[list[dict[str, Any]], int]:
    """The refused uses of links a run's items record, the last few of each task, and their count.
    A task's record (``<task>:refused``) is bounded; older releases wrote one item per refusal
    (``<task>:refused:<id>``), read here the same way."""
    shown: list[dict[str, Any]] = []
    count = 0
    legacy: dict[str, list[dict[str, Any]]] = {}
    for key, rec in recs.items():
        if key.endswith(":refused") and isinstance(rec.output, dict):
            count += rec.output.get("count", 0)
            shown += rec.output.get("last") or []
        elif ":refused:" in key and isinstance(rec.output, dict):
            count += 1
            legacy.setdefault(key.split(":refused:", 1)[0], []).append(rec.output)
    for entries in legacy.values():
        shown += sorted(entries, key=lambda r: r.get("at", ""))[-REFUSALS_SHOWN:]
    return sorted(shown, key=lambda r: r.get("at", "")), count
