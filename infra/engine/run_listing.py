"""The run listing and a loop's iterations, as the API shows them (GET /runs, GET /runs/counts,
GET /runs/{id}/tasks/{task}/iterations).

Runs are listed through the ``RunQueries`` port (indexes on DynamoDB, infra/aws/dynamo_listing.py).
A loop's iterations are read by their keys (keys.iteration_key): a page of ``limit`` iterations is
one batch read of that many items, whatever the loop's length, never a read of the whole loop.
"""

from __future__ import annotations

from typing import Any

from statemachine.state import loop_total

from ..listing import RunPage, RunQueries, RunQuery, RunSummary
from ..ports import StateStore, TaskRecord
from .iterations import folded_iteration, is_folded
from .keys import body_key, iteration_key
from .plans import Plans
from .timing import duration_ms

MAX_ITERATIONS_PAGE = 100  # a page's iterations times its body's tasks is what one request reads


class UnknownLoop(Exception):
    """The run has no such task, or the task is not a loop."""


class RunListing:
    def __init__(self, store: StateStore, queries: RunQueries, plans: Plans):
        self.store = store
        self.queries = queries
        self.plans = plans

    def list_runs(self, query: RunQuery) -> RunPage:
        return self.queries.list_runs(query)

    def count_runs(self, workflow_id: str | None = None, since: str | None = None,
                   until: str | None = None) -> dict[str, int]:
        return self.queries.count_runs(workflow_id, since, until)

    def iterations(self, run_id: str, task_id: str, start: int, limit: int) -> dict[str, Any] | None:
        """Iterations ``start`` .. ``start + limit - 1`` of loop ``task_id``: each one's status, output,
        error, times, and the status of each of its body's tasks. None if there is no such run."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        plan = self.plans.get(run.plan_hash)
        loop = plan.nodes.get(task_id)
        if loop is None or loop.kind != "loop":
            raise UnknownLoop(f"run '{run_id}' has no loop '{task_id}'")
        body: list[str] = list(loop.config.get("body") or [])
        indexes = range(start, start + min(limit, MAX_ITERATIONS_PAGE) + 1)  # one more: is there a next page
        keys = [task_id] + [iteration_key(task_id, i) for i in indexes]
        keys += [body_key(m, task_id, i) for i in indexes for m in body]
        _, recs = self.store.load(run_id, keys)
        looping = recs.get(task_id) or TaskRecord(task_id)
        total = loop_total(looping.loop_state)
        folded = body[0] if is_folded(looping) and len(body) == 1 else None  # iterations.py
        shown = []
        for i in indexes:
            rec = recs.get(iteration_key(task_id, i))
            if rec is None and folded:
                rec = folded_iteration(iteration_key(task_id, i), recs.get(body_key(folded, task_id, i)))
            if rec is None:
                if total is None or i >= total:
                    break  # a while loop's (or a finished loop's) last iteration was the one before
                rec = TaskRecord(iteration_key(task_id, i))  # not started yet: PENDING
            shown.append({
                "index": i, "status": rec.status, "output": rec.output, "error": rec.error,
                "started_at": rec.started_at, "ended_at": rec.ended_at,
                "duration_ms": duration_ms(rec.started_at, rec.ended_at),
                "tasks": {m: (recs.get(body_key(m, task_id, i)) or TaskRecord(m)).status for m in body},
            })
        more = len(shown) > min(limit, MAX_ITERATIONS_PAGE)
        shown = shown[:min(limit, MAX_ITERATIONS_PAGE)]
        return {"run_id": run_id, "task_id": task_id, "total": total, "iterations": shown,
                "next": start + len(shown) if more else None}


def summary_view(summary: RunSummary) -> dict[str, Any]:
    """One run of the listing as JSON."""
    return {"run_id": summary.run_id, "workflow_id": summary.workflow_id, "status": summary.status,
            "created_at": summary.created_at, "ended_at": summary.ended_at,
            "duration_ms": duration_ms(summary.created_at, summary.ended_at),
            "parent": (summary.parent or {}).get("run")}



