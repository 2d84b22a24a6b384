"""Parallel blocks at run time: aggregate the branches; a `first` block ends at the first success; a branch
that runs longer than ``config.parallelism.branch_timeout`` is ended.

The branch's deadline counts from the claim of its first task (with ``max_concurrent``, when the branch
really starts), as a one-time timer named by the run, the block, the branch and its loop iteration: every
claim of a member arms it, and a name already pending makes the later ones no-ops. When it fires, each of
the branch's tasks that has not ended is ended FAILED with ``BranchTimeout`` (running, waiting or not
started yet; no retry, no catch: the branch's time is over), and the block then aggregates as usual, so
its strategy decides (``all`` fails, ``merge`` shows the branch failed, ``first`` takes another branch).
Firing again changes nothing: an ended task is left as it is.
"""

from __future__ import annotations

from datetime import timedelta

from statemachine.aggregation import MemberState, aggregate, branch_view, first_winner
from statemachine.expressions import EvalContext, Scope, render
from statemachine.messages import BranchTimeout
from statemachine.plan import Node, Plan
from statemachine.state import catch_step
from statemachine.status import RUN_MOVING, TASK_ENDED, RunStatus, TaskStatus

from ..clock import iso, parse_iso
from ..ports import Clock, RunRecord, StateStore, TaskRecord
from ..tasks.base import TaskFailure, TaskResult
from .keys import is_stale, timer_name
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans


def member_state(rec: TaskRecord | None) -> MemberState:
    """A block member's (or a loop body task's) outcome, as the aggregation reads it."""
    if rec is None:
        return MemberState(TaskStatus.PENDING)
    return MemberState(rec.status, rec.output, rec.error, catch_step(rec.catch) == "caught",
                       rec.ended_at or "")


class Blocks:
    def __init__(self, store: StateStore, outcomes: Outcomes, messenger: Messenger, clock: Clock, plans: Plans):
        self.store = store
        self.outcomes = outcomes
        self.messenger = messenger
        self.clock = clock
        self.plans = plans

    # ------------------------------------------------------------ branch timeouts

    def arm_branch_timeout(self, plan: Plan, run_id: str, member: Node, key: str, epoch: int) -> None:
        """``member`` (of a parallel block) is being claimed: its branch's deadline, if the block has one."""
        block = plan.nodes.get(member.parallel_of or "")
        seconds = block.config.get("branch_timeout") if block is not None else None
        if block is None or not seconds:
            return
        branch = next((name for name, ids in block.config["branches"].items() if member.id in ids), None)
        if branch is None:
            return
        suffix = key[len(member.id):]  # "@loop.3" inside a loop's iteration, else ""
        at = self.clock.now() + timedelta(seconds=seconds)
        self.messenger.schedule(timer_name(run_id, f"{block.id}:{branch}{suffix}", 0, "branch_timeout", epoch), at,
                                BranchTimeout(run_id, plan.hash, block.id, branch, iso(at), suffix, epoch))

    def on_branch_timeout(self, msg: BranchTimeout) -> None:
        plan = self.plans.get(msg.plan)
        block = plan.nodes[msg.block]
        members = block.config["branches"].get(msg.branch, [])
        run, recs = self.store.load(msg.run, [m + msg.suffix for m in members])
        if run is None:
            return
        now = self.clock.now()
        if run.status == RunStatus.PAUSED or parse_iso(msg.at) > now + timedelta(seconds=0.5):
            # Paused, or delivered early: look again later (a paused run's branch times out once resumed).
            again = max(parse_iso(msg.at), now + timedelta(seconds=60 if run.status == RunStatus.PAUSED else 0))
            self.messenger.schedule(timer_name(msg.run, f"{msg.block}:{msg.branch}{msg.suffix}", 0,
                                               f"branch_timeout.{iso(again)}", msg.epoch), again, msg)
            return
        if run.status not in RUN_MOVING:
            return
        error = {"type": "BranchTimeout", "message": f"branch '{msg.branch}' of parallel block '{block.id}' ran "
                                                     f"longer than {block.config['branch_timeout']:g}s"}
        for member in members:
            rec = recs.get(member + msg.suffix) or TaskRecord(member + msg.suffix)
            if is_stale(msg.epoch, rec):
                continue
            if rec.status in TASK_ENDED and (rec.error or {}).get("type") != "BranchTimeout":
                continue  # ended of itself; one this timer ended goes through time_out again (a redelivery)
            self.outcomes.time_out(plan, run, plan.nodes[member], rec, error, "its branch timed out")

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
