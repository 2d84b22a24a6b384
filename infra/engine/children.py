"""Sub-workflows: a child run of a registered workflow, which reports its end to its parent.

The child's run id derives from the parent task's key and attempt, so a redelivery that starts
it again finds it already there. The parent's task waits (nothing runs) until a `child_done`
message arrives; stopping the parent's task halts the child (halting.py).
"""

from __future__ import annotations

from datetime import timedelta

from statemachine.expressions import EvalContext, Scope, render
from statemachine.inputs import InputError, prepare_inputs
from statemachine.messages import ChildDone, ParentRef
from statemachine.plan import Node, Plan
from statemachine.status import RUN_ENDED, TASK_ENDED, RunStatus, TaskStatus, WaitingFor

from ..clock import iso
from ..ports import Clock, RunRecord, StateStore, TaskChange, TaskRecord
from ..tasks.base import TaskFailure, TaskResult
from .deadlines import arm_deadline
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans
from .propagate import Propagation
from .reading import Scopes
from .run_start import RunStart


class Children:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, messenger: Messenger, scopes: Scopes,
                 outcomes: Outcomes, propagation: Propagation, run_start: RunStart):
        self.store = store
        self.clock = clock
        self.plans = plans
        self.messenger = messenger
        self.scopes = scopes
        self.outcomes = outcomes
        self.propagation = propagation
        self.run_start = run_start

    def run_sub_workflow(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope: Scope,
                         ctx: EvalContext) -> None:
        ref = node.config["workflow_ref"]
        child_plan = self.plans.find(ref)
        if child_plan is None:
            raise TaskFailure("WorkflowNotFound", f"no registered workflow '{ref}'")
        inputs = render(node.config.get("inputs") or {}, scope, ctx)
        try:
            prepare_inputs(child_plan, inputs)
        except InputError as exc:
            raise TaskFailure("InvalidInput", f"sub-workflow '{ref}': {exc}") from exc
        self.plans.save(child_plan)
        deadline = self.clock.now() + timedelta(seconds=node.timeout) if node.timeout else None
        # After a redrive the task gets a new child run (the epoch in its id), not the old failed one.
        child_run = f"{run.run_id}-{rec.task_id}-{rec.attempt}" + (f"-r{rec.redrive}" if rec.redrive else "")
        change = TaskChange(status=TaskStatus.WAITING, from_status=(TaskStatus.RUNNING,), attempt=rec.attempt, set={
            "waiting_for": WaitingFor.CHILD, "child_run": child_run,
            "child_plan": child_plan.hash, "child_inputs": inputs, "lease_until": None,
            "wake_at": iso(deadline) if deadline else None})
        new, applied = self.outcomes.change(run.run_id, rec, change, f"waiting for its sub-workflow run {child_run}")
        if applied:
            self.start_child(plan, run, node, new)
            arm_deadline(self.messenger, plan, run.run_id, node, new)

    def start_child(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> None:
        """Idempotent: the start message and the run item are both keyed by the child's run id."""
        if rec.child_plan is None or rec.child_run is None:
            raise LookupError(f"task {rec.task_id} waits for no sub-workflow run")
        parent = ParentRef(run.run_id, plan.hash, node.id, rec.task_id, rec.attempt)
        self.run_start.start_run(self.plans.get(rec.child_plan), rec.child_inputs or {}, run_id=rec.child_run,
                                 parent=parent)

    def on_child_done(self, msg: ChildDone) -> None:
        parent = msg.parent
        plan = self.plans.get(parent.plan)
        node = plan.nodes[parent.task]
        run, rec, recs, extra = self.scopes.load_for(plan, parent.run, node, parent.key, node.deps)
        if run is None or run.status in RUN_ENDED or msg.child != rec.child_run:
            return  # the run has ended (nothing moves then), or a child of before a redrive
        if rec.status in TASK_ENDED and rec.attempt == parent.attempt:
            self.propagation.propagate(plan, run.run_id, node, rec)  # a redelivery after the finishing write
            return
        if rec.status != TaskStatus.WAITING or rec.waiting_for != WaitingFor.CHILD or rec.attempt != parent.attempt:
            return
        child = self.store.get_run(msg.child)
        if child is None or child.status not in RUN_ENDED:
            return
        if child.status != RunStatus.COMPLETED:
            error = child.error or {}
            self.outcomes.fail(plan, run, node, rec, TaskFailure(
                error.get("type") or "SubWorkflowFailed",
                f"sub-workflow run {child.run_id} {child.status}: {error.get('message', '')}"),
                from_status=TaskStatus.WAITING)
            return
        output = child.outputs
        if node.config.get("outputs"):
            scope = self.scopes.scope_for(run, recs, node.deps, extra={
                **(extra or {}), "child": {"outputs": child.outputs, "status": child.status, "run_id": child.run_id}})
            output = render(node.config["outputs"], scope, self.scopes.eval_context(rec))
        self.outcomes.succeed(plan, run, node, rec, TaskResult(output), from_status=TaskStatus.WAITING)
