"""The run as the contract shows it (`loopline run --json`, `GET /runs/{id}`)."""

from __future__ import annotations

from typing import Any

from statemachine.state import loop_total
from statemachine.status import RUN_ENDED, RunStatus, TaskStatus, WaitingFor

from ..ports import Clock, StateStore, TaskRecord
from .ballots import Ballots
from .keys import node_of
from .links import Links
from .plans import Plans
from .timing import duration_ms, task_times

REFUSALS_SHOWN = 5  # per task, as links.py keeps them (REFUSALS_KEPT)


class Views:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, ballots: Ballots, links: Links):
        self.store = store
        self.clock = clock
        self.plans = plans
        self.ballots = ballots
        self.links = links

    def describe_run(self, run_id: str, base_url: str | None = None) -> dict[str, Any] | None:
        """``base_url`` prefixes approval/callback links when the deployment has no public URL set."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        plan = self.plans.get(run.plan_hash)
        recs = self.store.list_tasks(run_id)
        latest: dict[str, TaskRecord] = {}
        for key, rec in recs.items():  # a role task shows its latest instance
            node = plan.nodes.get(node_of(key))
            if rec.status == TaskStatus.PENDING and node is not None and node.role != "flow":
                continue  # an instance a redrive reset and nothing needed since: as if there were none
            current = latest.get(node_of(key))
            if current is None or (rec.started_at or "") >= (current.started_at or ""):
                latest[node_of(key)] = rec
        tasks: dict[str, Any] = {}
        timing: dict[str, Any] = {}
        for task_id, node in plan.nodes.items():
            found = latest.get(task_id)
            if found is not None:
                rec = found
            else:
                # A role that was never needed ends SKIPPED with the run (dsl.md).
                status = TaskStatus.SKIPPED if node.role != "flow" and run.status in RUN_ENDED else TaskStatus.PENDING
                rec = TaskRecord(task_id, status=status)
            attempts = rec.attempt - 1 if rec.status == TaskStatus.RETRYING else rec.attempt
            tasks[task_id] = {"status": rec.status, "output": rec.output, "attempts": attempts, "error": rec.error}
            # Beside "tasks", not in it: a task's entry keeps the contract's shape exactly.
            timing[task_id] = task_times(run, node, latest, rec)
            if node.kind == "loop":  # its iterations: GET /runs/{id}/tasks/{task}/iterations
                timing[task_id]["iterations"] = loop_total(rec.loop_state)
            if rec.printed:  # what a code task's code printed, in the attempt that ended last
                tasks[task_id]["printed"] = rec.printed
        approvals: list[dict[str, Any]] = []
        callbacks: list[dict[str, Any]] = []
        if run.status not in RUN_ENDED:
            for key, rec in recs.items():
                if rec.status != TaskStatus.WAITING or rec.waiting_for not in (WaitingFor.APPROVAL,
                                                                               WaitingFor.CALLBACK):
                    continue
                if rec.waiting_for == WaitingFor.CALLBACK:
                    names = {k: v for k, v in (rec.approval or {}).items() if k in ("callback_id", "event")}
                    callbacks.append({"task_id": node_of(key), "url": self.links.url(run_id, rec, base_url),
                                      "deadline": rec.wake_at, **names})
                    continue
                request = rec.approval or {}
                voted = {v["approver"] for v in self.ballots.votes(run_id, rec)}
                for who, token in self.ballots.links(run_id, rec):  # one link per approver yet to decide
                    if who not in voted:
                        url = self.links.url(run_id, rec, base_url, token)
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
            "error": run.error if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) else None,
            "tasks": tasks,
            "timing": timing,  # per task: queued/started/ended, duration, ended attempts (timing.py)
            "approvals": approvals,
            "callbacks": callbacks,
            "refused_links": refused,  # the last few refused uses of each task's links, oldest first
            "refused_count": refused_count,  # all of them
            "created_at": run.created_at,
            "ended_at": run.ended_at,
            "redrives": run.redrives,  # times it was redriven (POST /runs/{id}/redrive)
            "duration_ms": duration_ms(run.created_at, run.ended_at),
            "parent": (run.parent or {}).get("run"),  # a sub-workflow's run: its parent run's id
        }

    def pending_approvals(self, run_id: str | None = None, approver: str | None = None,
                          base_url: str | None = None) -> list[dict[str, Any]]:
        """Requests waiting for a decision, one entry per approver yet to decide: of one run, or
        (from the unused links) of every run; optionally only one approver's."""
        if run_id is not None:
            view = self.describe_run(run_id, base_url) or {"approvals": []}
            entries = [{**a, "run_id": run_id} for a in view["approvals"]]
        else:
            now = self.clock.now().timestamp()
            waiting = {(t.run_id, t.task_id) for t in self.store.unused_tokens("approval")
                       if t.expires_at is None or t.expires_at > now}
            entries = []
            for run_id_, key in sorted(waiting):
                entries += [a for a in self.pending_approvals(run_id_, base_url=base_url) if a["key"] == key]
        return [e for e in entries if approver is None or e["approver"] == approver]


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
