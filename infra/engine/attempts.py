"""One attempt of a task, from its exec message: claim it, run its type, record what became of it.

The path of one message: ``Engine.handle`` decodes it and calls ``Attempts.on_exec``, which
reads the run and the task's item (``Scopes.load_for``), decides from their state what this
delivery must do (start, carry a finished attempt on, take over an expired lease, or nothing),
claims the attempt with one conditional write (RUNNING under a lease), runs the task (or hands
a code task to the task runner) and records the outcome (``Outcomes``), which propagates it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from statemachine.circuit import holder_of
from statemachine.decisions import edge_fields
from statemachine.delivery import Claim, Step, decide_delivery
from statemachine.expressions import EvalContext, ExpressionError, Scope, evaluate, render, seed_of, truthy
from statemachine.limits import CODE_TASK_TYPES
from statemachine.messages import Exec, handed_back
from statemachine.plan import BreakerSpec, Node, Plan
from statemachine.shown_input import shown_input
from statemachine.status import TaskStatus

from ..clock import iso, parse_iso
from ..dispatch.jobs import AttemptRef, CodeResult
from ..ports import Clock, RunRecord, TaskChange, TaskRecord
from ..tasks.base import TaskFailure, TaskResult
from ..tasks.registry import TaskTypes
from .blocks import Blocks
from .budget import fits_in_worker
from .children import Children
from .circuits import Circuits
from .code_tasks import CodeTasks, Prepared, Verdict, judge, runs_code
from .keys import node_of
from .loops import Loops
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans
from .propagate import Propagation
from .reading import Scopes
from .recall import RecallingStore
from .waits import Waits

log = logging.getLogger(__name__)
WAIT_TYPES = ("wait", "callback", "approval")


class Busy(Exception):
    """Another delivery holds this task's lease: hand the message back for later."""


class Attempts:
    def __init__(self, clock: Clock, rng: random.Random, lease_seconds: float, plans: Plans,
                 scopes: Scopes, messenger: Messenger, outcomes: Outcomes, propagation: Propagation, waits: Waits,
                 blocks: Blocks, loops: Loops, children: Children, code: CodeTasks | None, task_types: TaskTypes,
                 recall: RecallingStore, circuits: Circuits):
        self.clock = clock
        self.rng = rng
        self.lease_seconds = lease_seconds
        self.plans = plans
        self.scopes = scopes
        self.messenger = messenger
        self.outcomes = outcomes
        self.propagation = propagation
        self.waits = waits
        self.blocks = blocks
        self.loops = loops
        self.children = children
        # Code tasks run in the task runner, reached through ``code``; an engine without one
        # (a tool that only reads runs) refuses to start them.
        self.code = code
        self.task_types = task_types  # how each type runs, with the deployment's settings
        self.recall = recall  # what this invocation saw of a run (recall.py)
        self.circuits = circuits  # circuit breakers: an attempt refused, or counted (circuits.py)

    def on_exec(self, msg: Exec, time_left: Callable[[], float] | None = None, carried: bool = False) -> None:
        """``time_left``: seconds the handling process has left (a Lambda's remaining time), if bounded;
        ``carried``: run by the invocation that made it ready, without a message of its own (carry_on.py)."""
        plan = self.plans.get(msg.plan)
        node = plan.nodes[msg.task]
        attempt = msg.attempt
        key = msg.item
        visible = self.scopes.visible_tasks(plan, node)
        if carried and (msg.edge is not None or msg.unwritten):
            # Made ready by its one edge, not written, or the first task of an iteration just created:
            # unless this invocation saw its item, it has none (its claim is conditional on that).
            self.recall.presume_unwritten(msg.run, key)
        run, rec, recs, loop_extra = self.scopes.load_for(plan, msg.run, node, key, visible, msg.ctx)
        if run is not None and carried and msg.edge is not None and (rec.resolved or rec.redrive or rec.parked):
            # It has an item after all (an edge counted before, a redrive's reset: its epoch is its own):
            # the edge is written as usual, and what it says goes.
            self._count_edge(plan, run, node, key, msg, recs)
            return
        now = self.clock.now()
        lease = parse_iso(rec.lease_until) if rec.lease_until else None
        delivery = decide_delivery(run, rec, attempt=attempt, epoch=msg.epoch, watch=msg.watch,
                                   flow=node.role == "flow", lease_until=lease, now=now, role=node.role)
        step = delivery.step
        if run is None or step is Step.IGNORE:
            return
        if step is Step.CANCEL:
            self.outcomes.cancel_task(plan, run, node, rec)
        elif step is Step.PARK:
            self.outcomes.park(run, rec, msg.ctx)  # resume starts it again
        elif step is Step.PROPAGATE:
            self.propagation.propagate(plan, run.run_id, node, rec)  # a redelivery: finish what it started
        elif step is Step.ENSURE_WAIT:
            self.waits.ensure_wait(plan, run, node, rec)
        elif step is Step.SCHEDULE_RETRY:
            self.outcomes.schedule_retry(plan, run.run_id, node, rec)
        elif step is Step.REARM_WATCHDOG and self.code is not None and lease is not None:
            # out with the task runner: its result or its watchdog will come (armed again: idempotent)
            self.code.arm(AttemptRef(run.run_id, plan.hash, node.id, key, attempt, rec.redrive), lease)
        elif step is Step.CLAIM:
            self._claim_and_run(plan, run, node, rec, msg, delivery.claim, recs, visible, loop_extra, now,
                                time_left, carried)
        else:
            raise Busy(f"{node.id} attempt {attempt}: {delivery.why}")

    def _claim_and_run(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, msg: Exec,
                       claim_kind: Claim | None, recs: dict[str, TaskRecord], visible: tuple[str, ...],
                       loop_extra: dict[str, Any] | None, now: datetime,
                       time_left: Callable[[], float] | None, carried: bool) -> None:
        attempt, key = msg.attempt, msg.item
        fresh, takeover = claim_kind is Claim.FRESH, claim_kind is Claim.TAKEOVER
        if time_left is not None and not fits_in_worker(node, rec, msg, time_left()):
            self.messenger.send(handed_back(msg))  # at once, to a process with the time for it: no visibility wait
            return

        # A carried task whose one edge was not written (Propagation.apply_edge): its claim counts it,
        # on the condition that the task has no item yet; where it has one, the edge is written as usual.
        # So for one presumed to have no item (Exec.unwritten): where it has one, it is decided again.
        edge = msg.edge if fresh and carried else None
        presumed = fresh and carried and (edge is not None or msg.unwritten)
        counted = edge_fields(*edge) if edge is not None else {}
        role_ctx = rec.role_ctx or msg.ctx
        scope = self.scopes.task_scope(run, rec, recs, visible, loop_extra, role_ctx)
        skip_error: ExpressionError | None = None
        if fresh:
            try:
                run_it = _should_run(node, scope, EvalContext(
                    now=now, seed=seed_of(run.run_id, node.id, key, str(rec.redrive or 0), "when")))
            except ExpressionError as exc:
                run_it = True  # claimed below, then failed with the error like any other
                skip_error = exc
            if not run_it:
                _, skipped = self.outcomes.end(plan, run, node, rec, TaskStatus.SKIPPED, None, from_status=None,
                                               extra={**({"role_ctx": role_ctx} if role_ctx else {}), **counted,
                                                      **({"carried": True} if carried else {})},
                                               reason="skipped by its when/skip_if", absent=presumed)
                if presumed and not skipped:
                    # It had an item: even one SKIPPED just so, by an invocation that carried it and may
                    # have died before propagating it (this is that invocation's message, redelivered).
                    self._presumed_wrong(plan, run, node, key, msg, recs, time_left)
                return
        if fresh and node.parallel_of:
            self.blocks.arm_branch_timeout(plan, run.run_id, node, key, rec.redrive)
        if takeover and rec.ctx_now:
            ctx_now, seed = rec.ctx_now, rec.ctx_seed  # a replay sees the same now() and random()
        else:
            ctx_now, seed = iso(now), self.rng.getrandbits(48)
        prepared: Prepared | None = None
        code_error: Exception | None = skip_error if fresh else None
        if runs_code(node, rec) and code_error is None:
            ref = AttemptRef(run.run_id, plan.hash, node.id, key, attempt, rec.redrive)
            prepared, code_error = self.code.prepare_for(ref, node, scope, run, parse_iso(ctx_now), seed or 0, now) \
                if self.code else (None, TaskFailure("TaskRunnerError", "this deployment has no task runner"))
        claim_ctx = EvalContext(now=parse_iso(ctx_now), seed=seed or 0)  # what the claim records, for a replay
        shown = shown_input(node.config, scope, claim_ctx) if node.kind == "task" else None
        claim = TaskChange(
            status=TaskStatus.RUNNING,
            from_status=(rec.status,) if rec.status != TaskStatus.PENDING else (None, TaskStatus.PENDING),
            attempt=None if fresh else attempt,
            lease_expired_before=iso(now) if takeover else None,
            absent=presumed,
            # A fresh claim over no item at all (a sent branch, a sent first task): a store may make it a
            # first write, falling back to the update where an item has appeared (TaskChange.likely_absent).
            likely_absent=fresh and not presumed and rec == TaskRecord(rec.task_id),
            set={
                "attempt": attempt,
                "lease_until": iso(now + timedelta(seconds=self.lease_seconds)),
                "started_at": rec.started_at or iso(now),
                "attempt_started_at": iso(now),
                "ctx_now": ctx_now,
                "ctx_seed": seed,
                "error": None,
                **({"role_ctx": role_ctx} if role_ctx and fresh else {}),
                **({"carried": True} if carried and fresh else {}),  # see carry_on.py
                **counted,
                # what this attempt was given (no attribute at all when neither it nor the last had one)
                **({"shown_input": shown} if shown is not None or rec.shown_input is not None else {}),
                **(prepared.claim_fields if prepared else {}),
            },
        )
        known = self._known_now(node, scope, claim_ctx, now) if fresh and prepared is None and code_error is None \
            else None
        if known is not None:
            applied = self.outcomes.claim_and_succeed(plan, run, node, rec, claim, known, scope, claim_ctx)
            if applied is not None:
                if not applied and presumed:
                    self._presumed_wrong(plan, run, node, key, msg, recs, time_left)
                return
        rec, claimed = self.outcomes.change(run.run_id, rec, claim, f"attempt {attempt} ({claim_kind})")
        if not claimed:
            if presumed:
                self._presumed_wrong(plan, run, node, key, msg, recs, time_left)
            return  # another delivery claimed it first; it carries the task on
        breaker = _breaker_of(node, rec)
        if breaker is not None and code_error is None:  # claimed, before it calls anything
            code_error = self.circuits.admit(breaker, holder_of(run.run_id, key, attempt, rec.redrive))
        if prepared is not None and self.code is not None and code_error is None:
            self.code.start(prepared, now)  # the message is done: the result comes back on its own queue
            return
        ctx = self.scopes.eval_context(rec)
        try:
            if code_error is not None:
                raise code_error
            self._run_node(plan, run, node, rec, scope, ctx)
        except ExpressionError as exc:
            self.outcomes.fail(plan, run, node, rec, TaskFailure("ExpressionError", str(exc)))
        except TaskFailure as exc:
            self.outcomes.fail(plan, run, node, rec, exc)

    def _presumed_wrong(self, plan: Plan, run: RunRecord, node: Node, key: str, msg: Exec,
                        recs: dict[str, TaskRecord], time_left: Callable[[], float] | None) -> None:
        """The claim of a carried task presumed to have no item was refused: it had one after all (an
        edge counted before, a redrive's reset, another delivery's claim). Its one edge is counted as
        usual; a first task of an iteration is decided again, on its item as read."""
        if msg.edge is not None:
            self._count_edge(plan, run, node, key, msg, recs)
            return
        self.recall.forget(run.run_id, key)
        self.on_exec(replace(msg, unwritten=False), time_left, carried=True)

    def _count_edge(self, plan: Plan, run: RunRecord, node: Node, key: str, msg: Exec,
                    recs: dict[str, TaskRecord]) -> None:
        """Write the edge a carried task's claim could not count, and go on as its dependency's
        propagation would have (Propagation.apply_edge)."""
        assert msg.edge is not None
        dep = plan.nodes[msg.edge[0]]
        dep_rec = recs.get(dep.id)
        if dep_rec is None:  # not in what was loaded: a dependency is always visible, so never expected
            raise LookupError(f"{key}: its dependency {dep.id} was not loaded")
        follow = self.propagation.apply_edge(plan, run.run_id, dep, dep_rec, node, key=key, ctx=msg.ctx, fold=False)
        if follow is not None:
            self.propagation.propagate(plan, run.run_id, *follow)

    def _run_node(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope: Scope,
                  ctx: EvalContext) -> None:
        if node.kind == "parallel":
            self.blocks.run_parallel(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "loop":
            self.loops.run_loop(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "sub_workflow":
            self.children.run_sub_workflow(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "condition":
            self.outcomes.succeed(plan, run, node, rec, _condition_result(node, scope, ctx))
            return
        gate = node.requires_approval
        decided = (rec.approval or {}).get("result")
        if gate is not None and decided is None:
            # An approval in front of the task; the task runs only if approved.
            spec = gate.model_dump()
            spec.setdefault("title", None)
            spec["title"] = spec["title"] or f"Approve '{node.name or node.id}'?"
            self.waits.begin_wait(plan, run, node, rec, scope, ctx, kind="approval", config=spec, gate=True)
            return
        if node.type in WAIT_TYPES:
            self.waits.begin_wait(plan, run, node, rec, scope, ctx)
            return
        if node.type in CODE_TASK_TYPES:  # never in the worker: on_exec dispatches them
            raise TaskFailure("TaskRunnerError", f"a {node.type} task reached the worker without its request")
        config = render(node.config, scope, ctx)
        holder = holder_of(run.run_id, rec.task_id, rec.attempt, rec.redrive)
        try:
            result = self.task_types.run(node, config, run, scope, ctx, at=self.clock.now(), plan=plan)
        except TaskFailure as failure:
            with self.circuits.after(node.circuit_breaker, holder, failure):
                self.outcomes.fail(plan, run, node, rec, failure)
            return
        if decided is not None:
            result = TaskResult(result.output, {**result.names, "approval": decided})
        with self.circuits.after(node.circuit_breaker, holder, None):
            self.outcomes.succeed(plan, run, node, rec, result, scope=scope, ctx=ctx)

    def _known_now(self, node: Node, scope: Scope, ctx: EvalContext, now: datetime) -> TaskResult | None:
        """The result of a node that only computes it, with no effect of its own (a condition, a wait
        already due), if it can be had without error: its claim then ends it in the same write
        (Outcomes.claim_and_succeed). Anything else, or an error, is None: the usual path claims the
        task first, runs it, and fails it with the reason."""
        if node.kind == "condition":
            try:
                return _condition_result(node, scope, ctx)
            except ExpressionError:
                return None
        if node.kind == "task" and node.type == "wait" and node.requires_approval is None:
            return self.waits.due_now(node, scope, ctx, now)
        return None

    def accept_result(self, body: str) -> str:
        """A code task's result from the result queue (infra/dispatch/jobs.py). It is recorded only for
        the attempt it was dispatched for; a forged, stale or repeated one changes nothing. A result
        that cannot be used is logged and dropped, never raised: it would only come back. Returns
        what was done (for the log); a storage error still raises, so the message comes back."""
        try:
            result = CodeResult.from_record(body)
            ref = result.attempt
            plan = self.plans.get(ref.plan_hash)
            node = plan.nodes[ref.task_id]
            if node_of(ref.key) != node.id or self.code is None:
                raise LookupError(f"{ref.key} is not an item of task {node.id}")
        except (ValueError, LookupError) as exc:
            log.warning("dropped a task result: %s", exc)
            return f"dropped: {exc}"
        visible = self.scopes.visible_tasks(plan, node)
        run, rec, recs, loop_extra = self.scopes.load_for(plan, ref.run_id, node, ref.key, visible)
        verdict, why = judge(run, rec, result)
        if verdict is Verdict.DROP or run is None:
            log.warning("dropped a task result for %s/%s attempt %s: %s", ref.run_id, ref.key, ref.attempt, why)
            return f"dropped: {why}"
        if verdict is Verdict.REPLAY:  # delivered again after its outcome was written: finish what it started
            if rec.status == TaskStatus.RETRYING:
                self.outcomes.schedule_retry(plan, run.run_id, node, rec)
            else:
                self.propagation.propagate(plan, run.run_id, node, rec)
            return f"replayed: {why}"
        scope = self.scopes.task_scope(run, rec, recs, visible, loop_extra)
        outcome, printed = self.code.outcome(result, rec)
        holder = holder_of(run.run_id, rec.task_id, rec.attempt, rec.redrive)
        if isinstance(outcome, TaskFailure):
            with self.circuits.after(node.circuit_breaker, holder, outcome):
                self.outcomes.fail(plan, run, node, rec, outcome, printed=printed)
            return f"failed: {outcome.error_type}"
        decided = (rec.approval or {}).get("result")
        if decided is not None:
            outcome = TaskResult(outcome.output, {**outcome.names, "approval": decided})
        with self.circuits.after(node.circuit_breaker, holder, None):
            self.outcomes.succeed(plan, run, node, rec, outcome, scope=scope, ctx=self.scopes.eval_context(rec),
                                  printed=printed)
        return "completed"


def _condition_result(node: Node, scope: Scope, ctx: EvalContext) -> TaskResult:
    value = evaluate(node.condition, scope, ctx) if isinstance(node.condition, str) else node.condition
    taken = truthy(value)
    return TaskResult({"result": taken, "branch": "then" if taken else "else"})


def _breaker_of(node: Node, rec: TaskRecord) -> BreakerSpec | None:
    """The breaker an attempt asks before it runs: a task's, unless the attempt only asks its
    ``requires_approval`` gate (the task itself runs at a later claim, which asks then)."""
    if node.circuit_breaker is None or node.kind != "task":
        return None
    if node.requires_approval is not None and (rec.approval or {}).get("result") is None:
        return None
    return node.circuit_breaker


def _should_run(node: Node, scope: Scope, ctx: EvalContext) -> bool:
    if node.when is not None:
        value = evaluate(node.when, scope, ctx) if isinstance(node.when, str) else node.when
        if not value:
            return False
    if node.skip_if is not None:
        value = evaluate(node.skip_if, scope, ctx) if isinstance(node.skip_if, str) else node.skip_if
        if value:
            return False
    return True
