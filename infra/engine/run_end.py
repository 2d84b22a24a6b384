"""The end of a run: once its flow is over, the compensations (if it failed), the finally tasks, the end.

The end steps are fixed once (``begin_end``) and each is idempotent, so a redelivery walks them
again from the start and each step finds what a previous delivery did.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from statemachine.expressions import ExpressionError, render, task_references
from statemachine.history import Retention
from statemachine.messages import ChildDone, ParentRef, Rewind
from statemachine.plan import Plan
from statemachine.status import RUN_MOVING, RunStatus

from ..clock import iso
from ..ports import Clock, RunRecord, StateStore
from .journal import Journal
from .keys import instance_key
from .messenger import Messenger
from .reading import Scopes


class RunEnd:
    def __init__(self, store: StateStore, clock: Clock, messenger: Messenger, scopes: Scopes, journal: Journal,
                 retention: Retention):
        self.store = store
        self.retention = retention  # a finished run's item expires (its TTL) after the retention
        self.journal = journal
        self.clock = clock
        self.messenger = messenger
        self.scopes = scopes

    def finalize(self, plan: Plan, run: RunRecord) -> None:
        """The flow is over: compensate if it failed, run the finally tasks, then finish. Safe to call again."""
        if run.status not in RUN_MOVING:
            self.notify_parent(run)  # ended before: a redelivery tells the parent again
            return
        if run.end_comps is None and run.status == RunStatus.RUNNING \
                and not (run.failed_tasks or run.cancelled or plan.finally_tasks):
            # No end step to fix (nothing failed, so nothing to compensate, and no finally task): the run
            # just ends, with finish_run's own condition. A redelivery finds it ended, or decides again.
            self._finish(plan, run)
            return
        if run.end_comps is None:
            comps = self._compensations(plan, run, run.cancelled) if run.failed_tasks else []
            before = run.status
            why = f"compensating {len(comps)} completed tasks"
            run = self.store.begin_end(run.run_id, comps, RunStatus.COMPENSATING if comps else RunStatus.RUNNING,
                                       note=self.journal.note(why) if comps else None)
            if run.status != before:
                self.journal.run(run.run_id, run.status, before, why)
        self.end_step(plan, run, 0)

    def end_step(self, plan: Plan, run: RunRecord, index: int) -> None:
        """Start end step ``index`` (compensations one at a time, then finally tasks), or finish the run."""
        if run.status not in RUN_MOVING and not (run.status == RunStatus.PAUSED and run.rewinding is not None):
            return  # (a moving run's rewind runs its compensations first while it holds the run PAUSED)
        comps = run.end_comps or []
        if run.rewinding is not None and index >= len(comps):
            # A rewind's compensations have run: the rewind goes on (rewind.py), not to the end of the run.
            self.messenger.send(Rewind(run.run_id, run.rewinding, run.rewind_to or ""))
            return
        steps = [(task, instance_key(task, done), {"role": "compensation", "for": done})
                 for task, done in comps]
        steps += [(task, task, {"role": "finally"}) for task in plan.finally_tasks]
        if index < len(steps):
            task, key, ctx = steps[index]
            self.messenger.send_exec(run.run_id, plan.hash, task, 1, key=key, ctx={**ctx, "index": index},
                                     epoch=run.redrives)  # no end step's item is older than the run's epoch
            return
        self._finish(plan, run)

    def notify_parent(self, run: RunRecord) -> None:
        """A sub-workflow's run has ended: its parent's task may go on (children.py)."""
        if run.parent:
            self.messenger.send(ChildDone(ParentRef.from_dict(run.parent), run.run_id))

    def _compensations(self, plan: Plan, run: RunRecord, cancelled: bool) -> list[list[str]]:
        """The saga: compensation tasks of the tasks that COMPLETED, latest completion first
        (those marked on_cancel when the run was cancelled, on_failure when it failed).
        Read once per failed run (a query of its tasks), never per transition."""
        def wanted(task_id: str) -> bool:
            spec = plan.nodes[task_id].compensation
            return spec is not None and (spec.on_cancel if cancelled else spec.on_failure)

        done = []
        for task_id, rec in self.store.list_tasks(run.run_id).items():
            spec = plan.nodes[task_id].compensation if task_id in plan.nodes else None
            if spec is not None and rec.status == "COMPLETED" and wanted(task_id):
                done.append((rec.ended_at or "", spec.task_id, task_id))
        order = {task_id: i for i, task_id in enumerate(plan.nodes)}
        done.sort(key=lambda item: (item[0], order[item[2]]), reverse=True)
        return [[compensation, task_id] for _, compensation, task_id in done]

    def _finish(self, plan: Plan, run: RunRecord) -> None:
        status, outputs, error = RunStatus.COMPLETED, None, None
        if run.cancelled:
            status, error = RunStatus.CANCELLED, run.error
        elif run.failed_tasks:
            status, error = RunStatus.FAILED, run.error
        elif plan.output_mappings:
            try:
                outputs = self._workflow_outputs(plan, run)
            except ExpressionError as exc:
                status, error = RunStatus.FAILED, {"type": "ExpressionError", "message": f"workflow outputs: {exc}"}
            except jsonschema.ValidationError as exc:
                status, error = RunStatus.FAILED, {"type": "OutputValidationError", "message": exc.message}
        why = f"{status.lower()}" + (f": {error.get('type')}" if error else "")
        if self.store.finish_run(run.run_id, status, outputs, error, iso(self.clock.now()), note=self.journal.note(why),
                                 expires=self.retention.of_workflow(plan.retention).expires(self.clock.now())):
            self.journal.run(run.run_id, status, run.status, why)
        self.notify_parent(run)

    def _workflow_outputs(self, plan: Plan, run: RunRecord) -> Any:
        refs = sorted(task_references(plan.output_mappings) & set(plan.nodes))
        _, recs = self.store.load(run.run_id, refs)
        scope = self.scopes.scope_for(run, recs, refs)
        outputs = render(plan.output_mappings, scope, self.scopes.eval_context(None, run.run_id, "outputs"))
        if plan.output_schema:
            jsonschema.validate(outputs, plan.output_schema, cls=jsonschema.Draft202012Validator)
        return outputs
