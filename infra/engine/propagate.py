"""After a node finishes: count its out-edges once, start or skip what became ready, end the run.

Work per finished node is O(out-degree): one conditional write per dependent.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from statemachine.decisions import DepCounts, edge_outcome, readiness
from statemachine.expressions import ExpressionError, render, task_references
from statemachine.plan import TERMINAL, Node, Plan

from ..clock import iso
from ..ports import ConditionFailed, RunRecord, TaskChange, TaskRecord


class PropagateMixin:
    def propagate(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        work: list[tuple[Node, TaskRecord]] = [(node, rec)]
        while work:
            done, done_rec = work.pop()
            if done_rec.status == "FAILED":
                # Idempotent; repeated here so a crash right after the FAILED write heals.
                self.store.record_failure(run_id, done.id, _run_error(done.id, done_rec.error))
            for dep_id in done.dependents:
                follow = self._apply_edge(plan, run_id, done, done_rec, plan.nodes[dep_id])
                if follow is not None:
                    work.append(follow)
            if done.id in plan.sinks:
                run = self.store.record_sink_done(run_id, done.id)
                if run.sinks_remaining <= 0 and run.status == "RUNNING":
                    self.finalize(plan, run)

    def _apply_edge(
        self, plan: Plan, run_id: str, done: Node, done_rec: TaskRecord, target: Node
    ) -> tuple[Node, TaskRecord] | None:
        """Returns the target if it finished here without running (skipped/cancelled) and must propagate in turn."""
        outcome = edge_outcome(done, done_rec.status, done_rec.output, target)
        applied, rec = self.store.resolve_edge(run_id, target.id, done.id, outcome)
        if rec.status in TERMINAL:
            # Finished by a cascade (never started) whose handler may have died
            # before propagating it: carry on for it. Started tasks own their message.
            if not applied and rec.attempt == 0:
                return target, rec
            return None
        if rec.status != "PENDING" or len(rec.resolved) < len(target.deps):
            return None
        counts = DepCounts(rec.deps_ok, rec.deps_failed, rec.deps_skipped, rec.forced_skip)
        decision = readiness(target, counts)
        if decision == "run":
            self.enqueue_exec(run_id, plan.hash, target.id, 1)
            return None
        status = "SKIPPED" if decision == "skip" else "CANCELLED"
        change = TaskChange(status=status, from_status=(None, "PENDING"), set={"ended_at": iso(self.clock.now())})
        try:
            return target, self.store.change_task(run_id, target.id, change)
        except ConditionFailed as lost:
            current = lost.current
            if current is not None and current.status in TERMINAL and current.attempt == 0:
                return target, current
            return None

    def finalize(self, plan: Plan, run: RunRecord) -> None:
        """End the run once every sink has finished. Safe to call again."""
        status, outputs, error = "COMPLETED", None, None
        if run.failed_tasks:
            status, error = "FAILED", run.error
        elif plan.output_mappings:
            try:
                outputs = self._workflow_outputs(plan, run)
            except ExpressionError as exc:
                status, error = "FAILED", {"type": "ExpressionError", "message": f"workflow outputs: {exc}"}
            except jsonschema.ValidationError as exc:
                status, error = "FAILED", {"type": "OutputValidationError", "message": exc.message}
        self.store.finish_run(run.run_id, status, outputs, error, iso(self.clock.now()))

    def _workflow_outputs(self, plan: Plan, run: RunRecord) -> Any:
        refs = sorted(task_references(plan.output_mappings) & set(plan.nodes))
        _, recs = self.store.load(run.run_id, refs)
        scope = self.scope_for(run, recs, refs)
        outputs = render(plan.output_mappings, scope, self.eval_context(None))
        if plan.output_schema:
            jsonschema.validate(outputs, plan.output_schema, cls=jsonschema.Draft202012Validator)
        return outputs


def _run_error(task_id: str, error: dict | None) -> dict[str, str]:
    error = error or {"type": "Error", "message": ""}
    return {"type": error.get("type", "Error"), "message": f"task '{task_id}': {error.get('message', '')}"}
