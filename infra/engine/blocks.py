"""Parallel blocks at run time: aggregate the branches; a `first` block ends at the first success."""

from __future__ import annotations

from statemachine.aggregation import MemberState, aggregate, branch_view, first_winner
from statemachine.expressions import EvalContext, Scope, render
from statemachine.plan import Node, Plan
from statemachine.state import catch_step
from statemachine.status import TASK_ENDED, TaskStatus

from ..ports import RunRecord, StateStore, TaskRecord
from ..tasks.base import TaskFailure, TaskResult
from .outcomes import Outcomes


def member_state(rec: TaskRecord | None) -> MemberState:
    """A block member's (or a loop body task's) outcome, as the aggregation reads it."""
    if rec is None:
        return MemberState(TaskStatus.PENDING)
    return MemberState(rec.status, rec.output, rec.error, catch_step(rec.catch) == "caught",
                       rec.ended_at or "")


class Blocks:
    def __init__(self, store: StateStore, outcomes: Outcomes):
        self.store = store
        self.outcomes = outcomes

    def run_parallel(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope: Scope,
                     ctx: EvalContext) -> None:
        config = node.config
        members = [m for ids in config["branches"].values() for m in ids]
        _, recs = self.store.load(run.run_id, members)
        states = {m: member_state(recs.get(m) or TaskRecord(m)) for m in members}
        views = {name: branch_view(ids, config["last"][name], states) for name, ids in config["branches"].items()}
        winner = None
        if config["strategy"] == "first":
            finished = {name: max((states[m].ended_at for m in config["last"][name]), default="")
                        for name in views}
            winner = first_winner(views, finished)
            for name, ids in config["branches"].items():
                if name != winner:
                    for m in ids:  # the losers stop: what has not finished is cancelled
                        member = recs.get(m) or TaskRecord(m)
                        if member.status not in TASK_ENDED:
                            self.outcomes.cancel_task(plan, run, plan.nodes[m], member)
        outcome = aggregate(config["strategy"], views, winner)
        if not outcome.ok:
            raise TaskFailure(outcome.error_type, outcome.message)
        output = outcome.output
        if config.get("output_mapping") is not None:
            branches = {name: {"status": v["status"], "output": v.get("data"), "error": v.get("error")}
                        for name, v in views.items()}
            local = Scope(roots={**scope.roots, "branches": branches}, bare=scope.bare)
            output = render(config["output_mapping"], local, ctx)
        elif config["strategy"] == "custom":
            output = aggregate("merge", views).output
        self.outcomes.succeed(plan, run, node, rec, TaskResult(output), scope=scope, ctx=ctx)

    def first_branch_done(self, run_id: str, block: Node, done: Node) -> bool:
        """For a `first` block: has the branch ``done`` ends now succeeded as a whole?"""
        for ids in block.config["last"].values():
            if done.id in ids:
                others = [m for m in ids if m != done.id]
                if not others:
                    return True
                _, recs = self.store.load(run_id, others)
                return all((recs.get(m) or TaskRecord(m)).status == TaskStatus.COMPLETED for m in others)
        return False
