"""After a node finishes: count its out-edges once, start or skip what became ready, end the run.

Work per finished node is O(out-degree): one conditional write per dependent, or for a join whose
dependencies' items lie close together, one strongly consistent read of them instead
(statemachine/joins.py). Inside a loop iteration the same walk stays within the iteration's own
items (``body_key``).
"""

from __future__ import annotations

from typing import Any

from statemachine.decisions import DepCounts, edge_outcome, one_edge, readiness
from statemachine.joins import counted_by_reading, joined_counts, span_ids
from statemachine.plan import Node, Plan
from statemachine.state import catch_step
from statemachine.status import RUN_MOVING, TASK_ENDED, TaskStatus

from ..clock import iso
from ..ports import Clock, StateStore, TaskChange, TaskRecord
from .blocks import Blocks
from .keys import body_key, iteration_key, iteration_of, node_of
from .messenger import Messenger
from .outcomes import Outcomes
from .protocols import FinishesIterations
from .run_end import RunEnd


class Propagation:
    # Connected by the Engine (protocols.py): the last task of an iteration carries its loop on.
    loops: FinishesIterations

    def __init__(self, store: StateStore, clock: Clock, messenger: Messenger, outcomes: Outcomes, blocks: Blocks,
                 run_end: RunEnd):
        self.store = store
        self.clock = clock
        self.messenger = messenger
        self.outcomes = outcomes
        self.blocks = blocks
        self.run_end = run_end
        self._by_reading: dict[tuple[str, str], bool] = {}  # (plan hash, node id): joins.counted_by_reading

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
            step = catch_step(done_rec.catch)
            if done_rec.status == TaskStatus.FAILED:
                if step == "pending":
                    self._start_handler(plan, run_id, done, done_rec)
                    continue  # its dependents wait for the handler
                if step != "caught" and not done.parallel_of:
                    # A parallel block's member failure is the block's to judge (its strategy).
                    # Idempotent; repeated here so a crash right after the FAILED write heals.
                    self.store.record_failure(run_id, done.id, _run_error(done.id, done_rec.error),
                                              epoch=done_rec.redrive)
            for dep_id in done.dependents:
                follow = self.apply_edge(plan, run_id, done, done_rec, plan.nodes[dep_id])
                if follow is not None:
                    work.append(follow)
            if done.id in plan.sinks:
                run = self.store.record_sink_done(run_id, done.id, epoch=done_rec.redrive)
                # COMPENSATING too: a redelivery after the end steps were fixed (and before the first
                # was queued, if the process died there) must take them up again.
                if run.sinks_remaining <= 0 and run.status in RUN_MOVING:
                    self.run_end.finalize(plan, run)

    def restart(self, plan: Plan, run_id: str, node: Node, recs: dict[str, TaskRecord], epoch: int) -> None:
        """A flow task reset at ``epoch`` (by a redrive or a migration) starts again: queued if it has no
        dependency, else the edges from its ended dependencies applied again (each counts once, however
        often this is repeated)."""
        if not node.deps:
            self.messenger.send_exec(run_id, plan.hash, node.id, 1, epoch=epoch)
        if self.by_reading(plan, node):
            # One read decides it, whichever dependencies have ended: nothing to apply per edge.
            if any(recs.get(d) is not None and recs[d].status in TASK_ENDED for d in node.deps):
                follow = self._join(plan, run_id, node)
                if follow is not None:
                    self.propagate(plan, run_id, *follow)
            return
        for dep_id in node.deps:
            done = recs.get(dep_id)
            if done is not None and done.status in TASK_ENDED:
                # Written (fold=False): a folded edge's exec carries the kept dependency's epoch, older
                # than the reset task's, and is stale unless this invocation carries it on itself.
                follow = self.apply_edge(plan, run_id, plan.nodes[dep_id], done, node, fold=False)
                if follow is not None:  # skipped or cancelled without running: it propagates in turn
                    self.propagate(plan, run_id, *follow)

    def apply_edge(self, plan: Plan, run_id: str, done: Node, done_rec: TaskRecord, target: Node,
                   key: str | None = None, ctx: dict[str, Any] | None = None,
                   fold: bool = True) -> tuple[Node, TaskRecord] | None:
        """Returns the target if it finished here without running (skipped/cancelled) and must propagate
        in turn. ``key``/``ctx``: the target's instance inside a loop iteration; ``fold``: a target
        whose only dependency this is, carried on in this invocation, has the edge counted by its
        claim (no write here; Attempts falls back to this with ``fold=False`` if that claim loses)."""
        key = key or target.id
        if key == target.id and self.by_reading(plan, target):
            return self._join(plan, run_id, target)
        caught = catch_step(done_rec.catch) == "caught"
        outcome = edge_outcome(done, done_rec.status, done_rec.output, target, caught)
        # Inside a loop only the body's own edges are counted (outside ones were done before it started).
        needed = [d for d in target.deps if plan.nodes[d].loop_of == target.loop_of]
        if fold and needed == [done.id] and self.messenger.carrying_now() \
                and readiness(target, one_edge(outcome)) == "run":
            # Its only dependency: ready now. Carried on here, its claim counts the edge (Attempts).
            self.messenger.ready(run_id, plan.hash, target.id, key=key, ctx=ctx, epoch=done_rec.redrive,
                                 edge=(done.id, outcome))
            return None
        # ``epoch``: an edge from before a rewind that reset the target is not counted (TaskRecord.fenced).
        applied, rec = self.store.resolve_edge(run_id, key, done.id, outcome, epoch=done_rec.redrive)
        if rec.status in TASK_ENDED:
            # Finished by a cascade (never started) whose handler may have died before propagating
            # it, or run in the invocation that handled this edge's message (``carried``), which may
            # have died before propagating it: carry on for it. Other started tasks own their message.
            if (not applied and rec.attempt == 0) or rec.carried:
                return target, rec
            return None
        if rec.status != TaskStatus.PENDING:
            if rec.carried:
                # Started by the invocation that handled this edge's message, which may have died with
                # it: the exec it never had goes now (its delivery decides: wait for the lease, take over,
                # make sure of its wait or retry).
                attempt = rec.attempt - 1 if rec.status == TaskStatus.RETRYING else rec.attempt
                self.messenger.send_exec(run_id, plan.hash, target.id, max(attempt, 1), key=key, ctx=ctx,
                                         epoch=rec.redrive)
            return None
        if len(rec.resolved) < len(needed):
            # A `first` block ends as soon as one branch has succeeded as a whole.
            if (target.kind == "parallel" and target.config.get("strategy") == "first" and outcome == "ok"
                    and self.blocks.first_branch_done(run_id, target, done)):
                self.messenger.send_exec(run_id, plan.hash, target.id, 1, epoch=rec.redrive)
            return None
        counts = DepCounts(rec.deps_ok, rec.deps_failed, rec.deps_skipped, rec.forced_skip)
        decision = readiness(target, counts)
        if decision == "run":
            self.messenger.ready(run_id, plan.hash, target.id, key=key, ctx=ctx, epoch=rec.redrive)
            return None
        status = TaskStatus.SKIPPED if decision == "skip" else TaskStatus.CANCELLED
        change = TaskChange(status=status, from_status=(None, TaskStatus.PENDING),
                            set={"ended_at": iso(self.clock.now()), **({"role_ctx": ctx} if ctx else {})})
        new, applied = self.outcomes.change(run_id, rec, change, f"{status.lower()} by its trigger rule "
                                            f"({target.trigger_rule}) on its dependencies' outcomes")
        # Lost: finished by a cascade that got there first (never started), whose handler may have died.
        if applied or (new.status in TASK_ENDED and new.attempt == 0):
            return target, new
        return None

    def by_reading(self, plan: Plan, node: Node) -> bool:
        """Whether ``node``'s dependencies are counted by reading them (statemachine/joins.py)."""
        known = self._by_reading.get((plan.hash, node.id))
        if known is None:
            known = self._by_reading[(plan.hash, node.id)] = counted_by_reading(plan, node)
        return known

    def _join(self, plan: Plan, run_id: str, target: Node) -> tuple[Node, TaskRecord] | None:
        """A dependency of ``target`` has ended (its end written before this is called): read the join's item
        and its dependencies' at once, and start or skip it if they have all ended. Every dependency's end is
        followed by such a read, so the read after the last end sees them all; a repeat decides the same, and
        two that both see them all race for the target's one conditional write. Returns the target as
        ``apply_edge`` does, if it finished without running and must propagate in turn."""
        items = self.store.read_span(run_id, span_ids(target))
        rec = items.get(target.id) or TaskRecord(target.id)
        if rec.status in TASK_ENDED:
            # Skipped or cancelled by another dependency's read (never started), whose handler may have died
            # before propagating it, or carried on by an invocation that may have: carry on for it.
            return (target, rec) if rec.attempt == 0 or rec.carried else None
        if rec.status != TaskStatus.PENDING:
            if rec.carried:  # as in apply_edge: the exec its carrying invocation never sent
                attempt = rec.attempt - 1 if rec.status == TaskStatus.RETRYING else rec.attempt
                self.messenger.send_exec(run_id, plan.hash, target.id, max(attempt, 1), epoch=rec.redrive)
            return None
        counts = joined_counts(plan, target, items)
        if counts is None:
            return None  # the dependency still running reads again when it ends
        decision = readiness(target, counts)
        if decision == "run":
            self.messenger.ready(run_id, plan.hash, target.id, epoch=rec.redrive)
            return None
        status = TaskStatus.SKIPPED if decision == "skip" else TaskStatus.CANCELLED
        # On the epoch read: a rewind that reset the target since decides again on its own.
        change = TaskChange(status=status, from_status=(None, TaskStatus.PENDING), epoch=rec.redrive,
                            set={"ended_at": iso(self.clock.now())})
        new, applied = self.outcomes.change(run_id, rec, change, f"{status.lower()} by its trigger rule "
                                            f"({target.trigger_rule}) on its dependencies' outcomes")
        if applied or (new.status in TASK_ENDED and new.attempt == 0):
            return target, new
        return None

    # ------------------------------------------------------------ loop bodies

    def _body_propagate(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        """A body task finished in one iteration: its edges stay inside that iteration."""
        where = iteration_of(rec.task_id)
        if where is None:
            raise LookupError(f"{rec.task_id} is not the item of a loop body's task")
        loop_id, index = where
        loop = plan.nodes[loop_id]
        ctx = {"role": "iteration", "loop": loop_id, "index": index}
        work = [(node, rec)]
        while work:
            done, done_rec = work.pop()
            if done_rec.status == TaskStatus.FAILED and catch_step(done_rec.catch) == "pending":
                self._start_handler(plan, run_id, done, done_rec)
                continue
            for dep_id in done.dependents:
                follow = self.apply_edge(plan, run_id, done, done_rec, plan.nodes[dep_id],
                                         key=body_key(dep_id, loop_id, index), ctx=ctx)
                if follow is not None:
                    work.append(follow)
            if list(loop.config["last"]) == [done.id]:
                # The body's one last task: the iteration ends with it, no count needed (the write
                # that ends the iteration is conditional on it running: a repeat changes nothing).
                self.loops.iteration_done(plan, run_id, loop, index)
            elif done.id in loop.config["last"]:
                caught = catch_step(done_rec.catch) == "caught"
                outcome = edge_outcome(done, done_rec.status, done_rec.output, loop, caught)
                _, iteration = self.store.resolve_edge(run_id, iteration_key(loop_id, index), done.id, outcome,
                                                       epoch=done_rec.redrive)
                if len(iteration.resolved) >= len(loop.config["last"]):
                    self.loops.iteration_done(plan, run_id, loop, index)

    # ------------------------------------------------------------ roles

    def _start_handler(self, plan: Plan, run_id: str, failed: Node, rec: TaskRecord) -> None:
        if rec.catch is None:
            raise LookupError(f"{rec.task_id} has no caught failure to handle")
        key = rec.catch["handler"]
        error = {**(rec.error or {}), "task_id": failed.id}
        # The handler's item is reset with the failed task's by a redrive: the same epoch.
        self.messenger.send_exec(run_id, plan.hash, node_of(key), 1, key=key,
                                 ctx={"role": "handler", "for": rec.task_id, "error": error}, epoch=rec.redrive)

    def _role_done(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        """A role instance finished: resolve the failure it handled, or take the run's next end step."""
        ctx = rec.role_ctx or {}
        if ctx.get("role") == "handler":
            self._handler_done(plan, run_id, plan.nodes[node_of(ctx["for"])], ctx["for"], rec)
            return
        if rec.status == TaskStatus.FAILED and ctx.get("role") == "finally":
            self.store.record_failure(run_id, rec.task_id, _run_error(rec.task_id, rec.error))
        run = self.store.get_run(run_id)
        if run is not None:
            self.run_end.end_step(plan, run, int(ctx.get("index", -1)) + 1)

    def _handler_done(self, plan: Plan, run_id: str, failed: Node, failed_key: str, handler_rec: TaskRecord) -> None:
        _, recs = self.store.load(run_id, [failed_key])
        rec = recs.get(failed_key) or TaskRecord(failed_key)
        catch = dict(rec.catch or {})
        if rec.status != TaskStatus.FAILED or catch.get("state") != "pending":
            if rec.status in TASK_ENDED:
                self.propagate(plan, run_id, failed, rec)  # resolved before: a redelivery carries on
            return
        if handler_rec.status == TaskStatus.COMPLETED and catch.get("retry"):
            # catch.retry: the handler ran, now the failed task gets one more attempt.
            change = TaskChange(status=TaskStatus.RETRYING, from_status=(TaskStatus.FAILED,), attempt=rec.attempt,
                                set={"attempt": rec.attempt + 1, "catch": {**catch, "state": "retrying"},
                                     "wake_at": iso(self.clock.now()), "ended_at": None})
            new, applied = self.outcomes.change(run_id, rec, change, "its handler ran: catch.retry")
            if applied:
                self.outcomes.schedule_retry(plan, run_id, failed, new)
            return
        caught = handler_rec.status == TaskStatus.COMPLETED
        change = TaskChange(status=TaskStatus.FAILED, from_status=(TaskStatus.FAILED,), attempt=rec.attempt,
                            set={"catch": {**catch, "state": "caught" if caught else "uncaught"},
                                 **({"output": handler_rec.output} if caught else {})})
        new, _ = self.outcomes.change(run_id, rec, change, "failure caught by its handler" if caught
                                      else "its handler failed")
        self.propagate(plan, run_id, failed, new)


def _run_error(task_id: str, error: dict[str, Any] | None) -> dict[str, str]:
    error = error or {"type": "Error", "message": ""}
    return {"type": error.get("type", "Error"), "message": f"task '{task_id}': {error.get('message', '')}"}
