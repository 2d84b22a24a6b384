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
from .messages import instance_key, node_of


class PropagateMixin:
    def propagate(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        if node.loop_of is not None:
            self._body_propagate(plan, run_id, node, rec)
            return
        if node.role != "flow":
            self._role_done(plan, run_id, node, rec)
            return
        work: list[tuple[Node, TaskRecord]] = [(node, rec)]
        while work:
            done, done_rec = work.pop()
            catch = done_rec.catch or {}
            if done_rec.status == "FAILED":
                if catch.get("state") == "pending":
                    self._start_handler(plan, run_id, done, done_rec)
                    continue  # its dependents wait for the handler
                if catch.get("state") != "caught" and not done.parallel_of:
                    # A parallel block's member failure is the block's to judge (its strategy).
                    # Idempotent; repeated here so a crash right after the FAILED write heals.
                    self.store.record_failure(run_id, done.id, _run_error(done.id, done_rec.error))
            for dep_id in done.dependents:
                follow = self._apply_edge(plan, run_id, done, done_rec, plan.nodes[dep_id])
                if follow is not None:
                    work.append(follow)
            if done.id in plan.sinks:
                run = self.store.record_sink_done(run_id, done.id)
                # COMPENSATING too: a redelivery after the end steps were fixed (and before the first
                # was queued, if the process died there) must take them up again.
                if run.sinks_remaining <= 0 and run.status in ("RUNNING", "COMPENSATING"):
                    self.finalize(plan, run)

    # ------------------------------------------------------------ roles

    def _start_handler(self, plan: Plan, run_id: str, failed: Node, rec: TaskRecord) -> None:
        key = rec.catch["handler"]
        error = {**(rec.error or {}), "task_id": failed.id}
        # The handler's item is reset with the failed task's by a redrive: the same epoch.
        self.enqueue_exec(run_id, plan.hash, node_of(key), 1, key=key,
                          ctx={"role": "handler", "for": rec.task_id, "error": error}, epoch=rec.redrive)

    def _role_done(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        """A role instance finished: resolve the failure it handled, or take the run's next end step."""
        ctx = rec.role_ctx or {}
        if ctx.get("role") == "handler":
            self._handler_done(plan, run_id, plan.nodes[node_of(ctx["for"])], ctx["for"], rec)
            return
        if rec.status == "FAILED" and ctx.get("role") == "finally":
            self.store.record_failure(run_id, rec.task_id, _run_error(rec.task_id, rec.error))
        run = self.store.get_run(run_id)
        if run is not None:
            self._end_step(plan, run, int(ctx.get("index", -1)) + 1)

    def _handler_done(self, plan: Plan, run_id: str, failed: Node, failed_key: str, handler_rec: TaskRecord) -> None:
        _, recs = self.store.load(run_id, [failed_key])
        rec = recs.get(failed_key) or TaskRecord(failed_key)
        catch = dict(rec.catch or {})
        if rec.status != "FAILED" or catch.get("state") != "pending":
            if rec.status in TERMINAL:
                self.propagate(plan, run_id, failed, rec)  # resolved before: a redelivery carries on
            return
        if handler_rec.status == "COMPLETED" and catch.get("retry"):
            # catch.retry: the handler ran, now the failed task gets one more attempt.
            change = TaskChange(status="RETRYING", from_status=("FAILED",), attempt=rec.attempt,
                                set={"attempt": rec.attempt + 1, "catch": {**catch, "state": "retrying"},
                                     "wake_at": iso(self.clock.now()), "ended_at": None})
            new, applied = self._change(run_id, rec, change)
            if applied:
                self._schedule_retry(plan, run_id, failed, new)
            return
        caught = handler_rec.status == "COMPLETED"
        change = TaskChange(status="FAILED", from_status=("FAILED",), attempt=rec.attempt,
                            set={"catch": {**catch, "state": "caught" if caught else "uncaught"},
                                 **({"output": handler_rec.output} if caught else {})})
        new, _ = self._change(run_id, rec, change)
        self.propagate(plan, run_id, failed, new)

    def _apply_edge(
        self, plan: Plan, run_id: str, done: Node, done_rec: TaskRecord, target: Node,
        key: str | None = None, ctx: dict | None = None,
    ) -> tuple[Node, TaskRecord] | None:
        """Returns the target if it finished here without running (skipped/cancelled) and must propagate
        in turn. ``key``/``ctx``: the target's instance inside a loop iteration."""
        key = key or target.id
        caught = (done_rec.catch or {}).get("state") == "caught"
        outcome = edge_outcome(done, done_rec.status, done_rec.output, target, caught)
        applied, rec = self.store.resolve_edge(run_id, key, done.id, outcome)
        if rec.status in TERMINAL:
            # Finished by a cascade (never started) whose handler may have died
            # before propagating it: carry on for it. Started tasks own their message.
            if not applied and rec.attempt == 0:
                return target, rec
            return None
        if rec.status != "PENDING":
            return None
        # Inside a loop only the body's own edges are counted (outside ones were done before it started).
        needed = [d for d in target.deps if plan.nodes[d].loop_of == target.loop_of]
        if len(rec.resolved) < len(needed):
            # A `first` block ends as soon as one branch has succeeded as a whole.
            if (target.kind == "parallel" and target.config.get("strategy") == "first" and outcome == "ok"
                    and self._first_branch_done(run_id, target, done)):
                self.enqueue_exec(run_id, plan.hash, target.id, 1, epoch=rec.redrive)
            return None
        counts = DepCounts(rec.deps_ok, rec.deps_failed, rec.deps_skipped, rec.forced_skip)
        decision = readiness(target, counts)
        if decision == "run":
            self.enqueue_exec(run_id, plan.hash, target.id, 1, key=key, ctx=ctx, epoch=rec.redrive)
            return None
        status = "SKIPPED" if decision == "skip" else "CANCELLED"
        change = TaskChange(status=status, from_status=(None, "PENDING"),
                            set={"ended_at": iso(self.clock.now()), **({"role_ctx": ctx} if ctx else {})})
        try:
            return target, self.store.change_task(run_id, key, change)
        except ConditionFailed as lost:
            current = lost.current
            if current is not None and current.status in TERMINAL and current.attempt == 0:
                return target, current
            return None

    # ------------------------------------------------------------ the end of a run

    def finalize(self, plan: Plan, run: RunRecord) -> None:
        """The flow is over: compensate if it failed, run the finally tasks, then finish. Safe to call again:
        the steps are fixed once (``begin_end``) and each step is idempotent, so a repeat walks them again."""
        if run.status not in ("RUNNING", "COMPENSATING"):
            self._notify_parent(run)  # ended before: a redelivery tells the parent again
            return
        if run.end_comps is None:
            comps = self._compensations(plan, run, run.cancelled) if run.failed_tasks else []
            run = self.store.begin_end(run.run_id, comps, "COMPENSATING" if comps else "RUNNING")
        self._end_step(plan, run, 0)

    def _end_step(self, plan: Plan, run: RunRecord, index: int) -> None:
        """Start end step ``index`` (compensations one at a time, then finally tasks), or finish the run."""
        if run.status not in ("RUNNING", "COMPENSATING"):
            return
        comps = run.end_comps or []
        steps = [(task, instance_key(task, done), {"role": "compensation", "for": done})
                 for task, done in comps]
        steps += [(task, task, {"role": "finally"}) for task in plan.finally_tasks]
        if index < len(steps):
            task, key, ctx = steps[index]
            self.enqueue_exec(run.run_id, plan.hash, task, 1, key=key, ctx={**ctx, "index": index},
                              epoch=run.redrives)  # no end step's item is older than the run's epoch
            return
        self._finish(plan, run)

    def _compensations(self, plan: Plan, run: RunRecord, cancelled: bool) -> list[list[str]]:
        """The saga: compensation tasks of the tasks that COMPLETED, latest completion first
        (those marked on_cancel when the run was cancelled, on_failure when it failed).
        Read once per failed run (a query of its tasks), never per transition."""
        def wanted(task_id: str) -> bool:
            spec = plan.nodes[task_id].compensation
            return spec is not None and (spec.on_cancel if cancelled else spec.on_failure)

        done = [(rec.ended_at or "", plan.nodes[task_id].compensation.task_id, task_id)
                for task_id, rec in self.store.list_tasks(run.run_id).items()
                if task_id in plan.nodes and rec.status == "COMPLETED" and wanted(task_id)]
        order = {task_id: i for i, task_id in enumerate(plan.nodes)}
        done.sort(key=lambda item: (item[0], order[item[2]]), reverse=True)
        return [[compensation, task_id] for _, compensation, task_id in done]

    def _finish(self, plan: Plan, run: RunRecord) -> None:
        status, outputs, error = "COMPLETED", None, None
        if run.cancelled:
            status, error = "CANCELLED", run.error
        elif run.failed_tasks:
            status, error = "FAILED", run.error
        elif plan.output_mappings:
            try:
                outputs = self._workflow_outputs(plan, run)
            except ExpressionError as exc:
                status, error = "FAILED", {"type": "ExpressionError", "message": f"workflow outputs: {exc}"}
            except jsonschema.ValidationError as exc:
                status, error = "FAILED", {"type": "OutputValidationError", "message": exc.message}
        self.store.finish_run(run.run_id, status, outputs, error, iso(self.clock.now()))
        self._notify_parent(run)

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
