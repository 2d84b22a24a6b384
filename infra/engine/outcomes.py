"""Recording what became of a task's attempt: success, failure (retried, caught or not), cancel, park.

Every write is conditional on the state the caller read (the attempt, the status it comes
from, the vote count of a waiting approval), so of racing writers exactly one applies; the
others get the winner's record back and carry on from it (``change``). An applied outcome
is propagated at once, except when it used up a link (``consume``): then the caller answers
the link's sender first and a queued self-check propagates it.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from statemachine.decisions import is_retryable, match_catch, retry_delay
from statemachine.expressions import EvalContext, ExpressionError, Scope, render
from statemachine.limits import MAX_OUTPUT
from statemachine.messages import Exec
from statemachine.plan import Node, Plan
from statemachine.status import TASK_ALIVE, TASK_ENDED, TaskStatus, WaitingFor
from statemachine.variable_types import export_errors

from ..clock import iso, parse_iso
from ..ports import Clock, ConditionFailed, RunRecord, StateStore, TaskChange, TaskRecord, TokenConsume
from ..tasks.base import TaskFailure, TaskResult
from .attempt_log import with_ended_attempt
from .journal import Journal
from .keys import instance_key, timer_name
from .messenger import Messenger
from .protocols import HaltsChildren, Propagates
from .reading import Scopes


class Outcomes:
    # Connected by the Engine (protocols.py): an applied outcome carries the run on; a stopped
    # task's sub-workflow run is stopped too.
    propagation: Propagates
    children: HaltsChildren

    def __init__(self, store: StateStore, clock: Clock, rng: random.Random, scopes: Scopes, messenger: Messenger,
                 journal: Journal):
        self.store = store
        self.journal = journal
        self.clock = clock
        self.rng = rng
        self.scopes = scopes
        self.messenger = messenger

    def succeed(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, result: TaskResult,
                scope: Scope | None = None, ctx: EvalContext | None = None, consume: TokenConsume | None = None,
                from_status: str = TaskStatus.RUNNING, printed: str | None = None,
                also_set: dict[str, Any] | None = None) -> TaskRecord:
        """Record success with the task's ``outputs`` evaluated; an output expression error fails the task.
        ``printed``: what a code task's code printed, kept with the attempt; ``also_set``: more fields
        set in the same write."""
        if scope is None:
            _, _, recs, extra = self.scopes.load_for(plan, run.run_id, node, rec.task_id, node.deps)
            scope = self.scopes.scope_for(run, recs, node.deps, extra=extra)
        ctx = ctx or self.scopes.eval_context(rec)
        own = {"response": result.output, **result.names}
        try:
            output, exports = _evaluate_outputs(node, result.output, own, scope, ctx)
        except ExpressionError as exc:
            return self.fail(plan, run, node, rec, TaskFailure("ExpressionError", str(exc)), consume=consume,
                             from_status=from_status, printed=printed)
        failure = _unstorable(output, exports, plan)
        if failure is not None:
            return self.fail(plan, run, node, rec, failure, consume=consume, from_status=from_status, printed=printed)
        return self.finish(plan, run, node, rec, TaskStatus.COMPLETED, output, exports=exports, consume=consume,
                           from_status=from_status, extra={**_printed(printed), **(also_set or {})})

    def claim_and_succeed(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, claim: TaskChange,
                          result: TaskResult, scope: Scope, ctx: EvalContext) -> bool | None:
        """Claim a task and record its success in one write: for a node whose result is known at its
        claim, with no effect of its own (a condition, a wait already due: Attempts._known_now). The
        write is ``claim``'s, with its conditions, ending COMPLETED: as atomic as the claim, so a crash
        leaves the task either untouched or ended, and a redelivery propagates an ended one. Returns
        whether it applied; None, having written nothing, when the outputs fail to evaluate or to
        store: the caller then claims and runs the task as usual, which fails it with the reason."""
        try:
            output, exports = _evaluate_outputs(node, result.output, {"response": result.output, **result.names},
                                                scope, ctx)
        except ExpressionError:
            return None
        if _unstorable(output, exports, plan) is not None:
            return None
        now = iso(self.clock.now())
        started = replace(rec, attempt=claim.set["attempt"], attempt_started_at=claim.set["attempt_started_at"])
        change = replace(claim, status=TaskStatus.COMPLETED, set={
            **claim.set, "output": output, "ended_at": now, "lease_until": None,
            **with_ended_attempt(started, now, None)})
        new, applied = self.change(run.run_id, rec, change, "completed at its claim", exports=exports)
        if applied:
            self.propagation.propagate(plan, run.run_id, node, new)
        return applied

    def fail(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, failure: TaskFailure,
             consume: TokenConsume | None = None, from_status: str = TaskStatus.RUNNING,
             printed: str | None = None) -> TaskRecord:
        if is_retryable(node.retry, rec.attempt, failure.error_type):
            delay = retry_delay(node.retry, rec.attempt, self.rng)
            now = iso(self.clock.now())
            change = TaskChange(
                status=TaskStatus.RETRYING,
                from_status=(from_status,),
                attempt=rec.attempt,
                votes=_vote_guard(rec, from_status),
                set={"attempt": rec.attempt + 1, "error": failure.as_error(), "lease_until": None,
                     "wake_at": iso(self.clock.now() + timedelta(seconds=delay)), "ctx_now": None,
                     **_printed(printed), **with_ended_attempt(rec, now, failure.as_error())},
            )
            new, applied = self.change(run.run_id, rec, change, f"{failure.error_type}: attempt {rec.attempt + 1} "
                                       f"in {delay:g}s", consume=consume)
            if applied:
                self.schedule_retry(plan, run.run_id, node, new)
            return new
        clause = match_catch(plan.catch, failure.error_type) if node.role == "flow" and not rec.catch else None
        catch = None
        if clause is not None:
            # Caught: the task stays FAILED and waits for its handler before its dependents go on.
            catch = {"handler": instance_key(clause.handler, rec.task_id), "state": "pending", "retry": clause.retry}
        return self.finish(plan, run, node, rec, TaskStatus.FAILED, None, error=failure.as_error(), consume=consume,
                           from_status=from_status, extra={**({"catch": catch} if catch else {}), **_printed(printed)})

    def cancel_task(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> TaskRecord:
        """Stop a task of a halting run, whatever it was doing; its dependents are cancelled in turn."""
        change = TaskChange(status=TaskStatus.CANCELLED, from_status=TASK_ALIVE,
                            set={"ended_at": iso(self.clock.now()), "lease_until": None})
        new, applied = self.change(run.run_id, rec, change, "the run is stopping")
        if applied and rec.waiting_for == WaitingFor.CHILD:
            self.children.halt_child(rec, f"the parent run {run.run_id} stopped its task '{node.id}'")
        if applied or new.status in TASK_ENDED:
            self.propagation.propagate(plan, run.run_id, node, new)
        return new

    def time_out(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, error: dict[str, Any],
                 reason: str) -> TaskRecord:
        """End a task FAILED with ``error`` whatever it was doing (running, waiting, not started yet), with
        no retry and no catch: the time it was given is over (a parallel block's branch_timeout). A task
        this already ended (a redelivery after the write) is carried on again: its edges count once."""
        if rec.status == TaskStatus.FAILED and (rec.error or {}).get("type") == error.get("type"):
            self.propagation.propagate(plan, run.run_id, node, rec)
            return rec
        started = rec.status in (TaskStatus.RUNNING, TaskStatus.WAITING)
        if started and rec.waiting_for == WaitingFor.CHILD:
            self.children.halt_child(rec, f"its parent's task '{node.id}' timed out")
        return self.finish(plan, run, node, rec, TaskStatus.FAILED, None, error=error,
                           from_status=rec.status if started else None, reason=reason)

    def finish(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, status: str, output: Any,
               error: dict[str, Any] | None = None, exports: dict[str, Any] | None = None,
               consume: TokenConsume | None = None, from_status: str | None = TaskStatus.RUNNING,
               extra: dict[str, Any] | None = None, reason: str = "", absent: bool = False) -> TaskRecord:
        """Write the task's end (``from_status`` None: it never started) and, if applied, carry the run on.
        ``reason``: why, for the transition's record (by default the status and the error's type);
        ``absent``: only where the task has no item at all (TaskChange.absent)."""
        return self.end(plan, run, node, rec, status, output, error=error, exports=exports, consume=consume,
                        from_status=from_status, extra=extra, reason=reason, absent=absent)[0]

    def end(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, status: str, output: Any,
            error: dict[str, Any] | None = None, exports: dict[str, Any] | None = None,
            consume: TokenConsume | None = None, from_status: str | None = TaskStatus.RUNNING,
            extra: dict[str, Any] | None = None, reason: str = "", absent: bool = False) -> tuple[TaskRecord, bool]:
        """``finish``, and whether its write applied (lost: the record returned is the winner's, which may
        look just like the one this would have written)."""
        never_started = from_status is None
        now = iso(self.clock.now())
        change = TaskChange(
            status=status,
            from_status=(None, TaskStatus.PENDING) if never_started else (from_status,),
            attempt=None if never_started else rec.attempt,
            absent=absent,
            votes=_vote_guard(rec, from_status),
            set={"output": output, "error": error, "ended_at": now, "lease_until": None,
                 **({} if never_started else with_ended_attempt(rec, now, error)), **(extra or {})},
        )
        reason = reason or status.lower() + (f": {error.get('type')}" if error else "")
        new, applied = self.change(run.run_id, rec, change, reason, exports=exports, consume=consume)
        if applied and consume is None:
            self.propagation.propagate(plan, run.run_id, node, new)
        return new, applied

    def resolve_gate(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, decision: dict[str, Any],
                     consume: TokenConsume | None = None) -> TaskRecord:
        """A ``requires_approval`` decision: approved -> READY (the task then runs), else SKIPPED."""
        approval = {**(rec.approval or {}), "result": decision}
        if decision["decision"] != "APPROVED":
            return self.finish(plan, run, node, rec, TaskStatus.SKIPPED, None, consume=consume,
                               from_status=TaskStatus.WAITING, extra={"approval": approval},
                               reason=f"its approval gate: {decision['decision']}")
        change = TaskChange(status=TaskStatus.READY, from_status=(TaskStatus.WAITING,), attempt=rec.attempt,
                            set={"approval": approval, "wake_at": None}, votes=_vote_guard(rec, TaskStatus.WAITING))
        new, applied = self.change(run.run_id, rec, change, "its approval gate: APPROVED", consume=consume)
        if applied and consume is None:
            self.messenger.send_exec(run.run_id, plan.hash, node.id, rec.attempt, key=rec.task_id, epoch=rec.redrive)
        return new

    def park(self, run: RunRecord, rec: TaskRecord, ctx: dict[str, Any] | None) -> None:
        """Leave a task of a PAUSED run as it is, marked for resume to start again (pausing.py);
        ``ctx``: the role context its message carried, kept for then."""
        status = rec.status
        change = TaskChange(status=status,
                            from_status=(None, TaskStatus.PENDING) if status == TaskStatus.PENDING else (status,),
                            set={"parked": True, **({"role_ctx": ctx} if ctx and not rec.role_ctx else {})})
        self.change(run.run_id, rec, change, "parked: the run is paused")

    def change(self, run_id: str, rec: TaskRecord, change: TaskChange, reason: str,
               exports: dict[str, Any] | None = None, consume: TokenConsume | None = None) -> tuple[TaskRecord, bool]:
        """(new record, True), or (the winner's record, False) when another writer got there first
        (a duplicate, a timeout): their write stands. With a token to consume, a lost race is
        raised instead: the caller answers the link's sender. An applied change is journaled
        with ``reason``."""
        # A change about one attempt is conditional on the item's epoch as read too: a rewind that reset the task
        # since (a late result of an attempt it discarded) makes it fail, even once the task runs again under the
        # same attempt number.
        epoch = rec.redrive if change.epoch is None and change.attempt is not None else change.epoch
        change = replace(change, set={**change.set, "last_change": self.journal.note(reason)}, epoch=epoch)
        try:
            new = self.store.change_task(run_id, rec.task_id, change, exports=exports or None, consume=consume)
        except ConditionFailed as lost:
            if consume is not None:
                raise
            return lost.current or rec, False
        self.journal.task(run_id, rec, new, reason)
        return new, True

    def schedule_retry(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        message = Exec(run_id, plan.hash, node.id, rec.attempt, key=rec.task_id, epoch=rec.redrive)
        at = parse_iso(rec.wake_at) if rec.wake_at else self.clock.now()
        self.messenger.schedule(timer_name(run_id, rec.task_id, rec.attempt, "retry", rec.redrive), at, message)


def _unstorable(output: Any, exports: dict[str, Any], plan: Plan) -> TaskFailure | None:
    """Why a result cannot be stored, if it cannot (an export of the wrong type for its variable, too)."""
    wrong = export_errors(plan.variables, exports)
    if wrong:
        return TaskFailure("VariableTypeError", "; ".join(wrong))
    try:
        size = len(json.dumps(output, default=str, allow_nan=False)) + len(
            json.dumps(exports, default=str, allow_nan=False))
    except ValueError:  # a provider's NaN or infinity (a JSON reply, a database float): never stored or shown
        return TaskFailure("InvalidOutput", "the result holds NaN or an infinity, which JSON cannot carry")
    if size > MAX_OUTPUT:
        return TaskFailure("OutputTooLarge", f"the result is larger than {MAX_OUTPUT >> 20} MB")
    return None


def _printed(printed: str | None) -> dict[str, Any]:
    return {"printed": printed} if printed else {}


def _vote_guard(rec: TaskRecord, from_status: str | None) -> int | None:
    """A decision on a waiting approval holds only if no vote came in since the decider read the
    task (each vote bumps ``votes``): else it fails and the decider counts again."""
    return rec.votes if from_status == TaskStatus.WAITING and rec.waiting_for == WaitingFor.APPROVAL else None


def _evaluate_outputs(node: Node, raw: Any, own: dict[str, Any], scope: Scope, ctx: EvalContext
                      ) -> tuple[Any, dict[str, Any]]:
    if node.outputs is None:
        return raw, {}
    local = Scope(roots={**scope.roots, **{k: v for k, v in own.items() if k in ("response", "approval")}},
                  bare=[own, *scope.bare])
    output: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    for spec in node.outputs:
        value = render(spec.value, local, ctx)
        output[spec.name] = value
        if spec.export:
            exports[spec.name] = value
    return output, exports
