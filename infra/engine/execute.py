"""Running one attempt of a task: claim it, run its type, record the result or the failure."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from statemachine.decisions import is_retryable, match_catch, retry_delay, wait_until
from statemachine.durations import parse_duration
from statemachine.expressions import EvalContext, ExpressionError, evaluate, render, truthy
from statemachine.limits import CODE_TASK_TYPES
from statemachine.plan import TERMINAL, Node, Plan
from statemachine.scope import build_scope, task_view

from ..clock import iso, parse_iso
from ..dispatch.jobs import AttemptRef
from ..ports import ConditionFailed, RunRecord, TaskChange, TaskRecord, TokenConsume, TokenRecord
from ..tasks.base import TaskFailure, TaskResult
from .budget import fits_in_worker, handed_back
from .code_tasks import runs_code
from .loops import body_key, iteration_key, iteration_of
from .messages import MAX_OUTPUT, exec_message, instance_key, is_stale

WAIT_TYPES = ("wait", "callback", "approval")


class ExecuteMixin:
    # ------------------------------------------------------------ scope

    def scope_for(self, run: RunRecord, recs: dict[str, TaskRecord], ids, own: dict | None = None, extra=None):
        tasks = {}
        for task_id in ids:
            rec = recs.get(task_id) or TaskRecord(task_id)
            tasks[task_id] = task_view(rec.status, rec.output, rec.error, rec.attempt)
        loop = (extra or {}).get("loop")
        iterator = {loop["iterator"]: loop["item"]} if loop and loop.get("iterator") else None
        return build_scope(run.inputs, run.variables, tasks, self.settings.env, own=own, extra_roots=extra,
                           iterator=iterator)

    def load_for(self, plan: Plan, run_id: str, node: Node, key: str, ids) -> tuple:
        """The run, the task's record under ``key``, and the records of ``ids`` by task id: inside a
        loop iteration a body task's siblings are that iteration's runs of them."""
        where = iteration_of(key) if node.loop_of else None
        keys = {d: body_key(d, where[0], where[1]) if where and plan.nodes[d].loop_of == where[0] else d
                for d in ids}
        extra_keys = [iteration_key(*where)] if where else []
        run, recs = self.store.load(run_id, [key, *keys.values(), *extra_keys])
        by_id = {d: recs[k] for d, k in keys.items() if k in recs}
        extra = None
        if where:  # the iteration's own record holds its item: a small read, whatever the list's size
            iteration = recs.get(extra_keys[0]) or TaskRecord(extra_keys[0])
            extra = {"loop": self._loop_root(plan.nodes[where[0]], iteration, where[1])}
        return run, recs.get(key) or TaskRecord(key), by_id, extra

    def visible_tasks(self, plan: Plan, node: Node) -> tuple[str, ...]:
        """What ``tasks`` holds for a node: its dependencies, and for python code (whose
        references are not parsed) every ancestor, i.e. every task certainly finished."""
        if node.type != "python":
            return node.deps
        key = (plan.hash, node.id)
        cached = self._ancestors.get(key)
        if cached is None:
            seen: dict[str, None] = {}
            stack = list(node.deps)
            while stack:
                current = stack.pop()
                if current not in seen:
                    seen[current] = None
                    stack.extend(plan.nodes[current].deps)
            cached = self._ancestors[key] = tuple(seen)
        return cached

    def task_scope(self, run: RunRecord, rec: TaskRecord, recs, visible, loop_extra, role_ctx=None):
        """The scope a task's attempt evaluates in: what it sees, its loop's item, a handler's ``error``."""
        role_ctx = rec.role_ctx or role_ctx
        extra = dict(loop_extra or {})
        if role_ctx and "error" in role_ctx:
            extra["error"] = role_ctx["error"]
        return self.scope_for(run, recs, visible, extra=extra or None)

    def eval_context(self, rec: TaskRecord | None) -> EvalContext:
        if rec is not None and rec.ctx_now:
            return EvalContext(now=parse_iso(rec.ctx_now), seed=rec.ctx_seed or 0)
        return EvalContext(now=self.clock.now(), seed=0)

    # ------------------------------------------------------------ exec

    def _on_exec(self, msg: dict[str, Any], time_left: Callable[[], float] | None = None) -> None:
        """``time_left``: seconds the handling process has left (a Lambda's remaining time), if bounded."""
        from .engine import RUN_TERMINAL, Busy

        plan = self.plan(msg["plan"])
        node = plan.nodes[msg["task"]]
        attempt = int(msg["attempt"])
        key = msg.get("key") or node.id
        watch = bool(msg.get("watch"))  # a code task's watchdog (code_tasks.py)
        visible = self.visible_tasks(plan, node)
        run, rec, recs, loop_extra = self.load_for(plan, msg["run"], node, key, visible)
        if run is None or run.status in RUN_TERMINAL or is_stale(msg, rec):
            return
        now = self.clock.now()
        if run.halt and node.role == "flow" and rec.status not in TERMINAL:
            self.cancel_task(plan, run, node, rec)  # the run is stopping: nothing new starts
            return
        if run.status == "PAUSED" and rec.status not in TERMINAL and rec.status != "WAITING":
            self.park(run, node, rec, msg)  # nothing new starts while paused; resume starts it again
            return
        takeover = rec.status == "RUNNING" and rec.attempt == attempt
        if watch and not takeover:
            return  # the attempt it watched is over: its result (or exec) message carried it on
        if rec.status in TERMINAL:
            self.propagate(plan, run.run_id, node, rec)  # a redelivery: finish what it started
            return
        if rec.status == "WAITING" and rec.attempt == attempt:
            self.ensure_wait(plan, run, node, rec)
            return
        if rec.status == "RETRYING" and rec.attempt == attempt + 1:
            self._schedule_retry(plan, run.run_id, node, rec)
            return
        if takeover and rec.lease_until and parse_iso(rec.lease_until) > now:
            if rec.token_hash and self.code:  # out with the task runner: its result or its watchdog will come
                self.code.arm(AttemptRef(run.run_id, plan.hash, node.id, key, attempt, rec.redrive),
                              parse_iso(rec.lease_until))  # (again: idempotent while pending)
                return
            raise Busy(f"{node.id} attempt {attempt} is running elsewhere")
        fresh = rec.status == "PENDING" and attempt == 1
        resumed = rec.status in ("READY", "RETRYING") and rec.attempt == attempt
        if not (fresh or resumed or takeover):
            return  # a stale message for an attempt that is over
        if time_left is not None and not fits_in_worker(node, rec, msg, time_left()):
            self.queue.send(handed_back(msg))  # at once, to a process with the time for it: no visibility wait
            return

        role_ctx = rec.role_ctx or msg.get("ctx")
        scope = self.task_scope(run, rec, recs, visible, loop_extra, role_ctx)
        if fresh:
            try:
                run_it = _should_run(node, scope, EvalContext(now=now, seed=0))
            except ExpressionError as exc:
                run_it = True  # claimed below, then failed with the error like any other
                skip_error = exc
            else:
                skip_error = None
            if not run_it:
                self.finish(plan, run, node, rec, "SKIPPED", None, from_status=None,
                            extra={"role_ctx": role_ctx} if role_ctx else None)
                return
        if takeover and rec.ctx_now:
            ctx_now, seed = rec.ctx_now, rec.ctx_seed  # a replay sees the same now() and random()
        else:
            ctx_now, seed = iso(now), self.rng.getrandbits(48)
        prepared, code_error = None, skip_error if fresh else None
        if runs_code(node, rec) and code_error is None:
            ref = AttemptRef(run.run_id, plan.hash, node.id, key, attempt, rec.redrive)
            prepared, code_error = self.code.prepare_for(ref, node, scope, run, parse_iso(ctx_now), seed or 0, now) \
                if self.code else (None, TaskFailure("TaskRunnerError", "this deployment has no task runner"))
        claim = TaskChange(
            status="RUNNING",
            from_status=(rec.status,) if rec.status != "PENDING" else (None, "PENDING"),
            attempt=None if fresh else attempt,
            lease_expired_before=iso(now) if takeover else None,
            set={
                "attempt": attempt,
                "lease_until": iso(now + timedelta(seconds=self.settings.lease_seconds)),
                "started_at": rec.started_at or iso(now),
                "ctx_now": ctx_now,
                "ctx_seed": seed,
                "error": None,
                **({"role_ctx": role_ctx} if role_ctx and fresh else {}),
                **(prepared.claim_fields if prepared else {}),
            },
        )
        try:
            rec = self.store.change_task(run.run_id, key, claim)
        except ConditionFailed:
            return  # another delivery claimed it first; it carries the task on
        if prepared is not None:
            self.code.start(prepared, now)  # the message is done: the result comes back on its own queue
            return
        ctx = self.eval_context(rec)
        try:
            if code_error is not None:
                raise code_error
            self._run_node(plan, run, node, rec, scope, ctx)
        except ExpressionError as exc:
            self.fail(plan, run, node, rec, TaskFailure("ExpressionError", str(exc)))
        except TaskFailure as exc:
            self.fail(plan, run, node, rec, exc)

    def _run_node(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope, ctx: EvalContext) -> None:
        if node.kind == "parallel":
            self._run_parallel(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "loop":
            self._run_loop(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "sub_workflow":
            self._run_sub_workflow(plan, run, node, rec, scope, ctx)
            return
        if node.kind == "condition":
            value = evaluate(node.condition, scope, ctx) if isinstance(node.condition, str) else node.condition
            result = truthy(value)
            self.succeed(plan, run, node, rec, TaskResult({"result": result, "branch": "then" if result else "else"}))
            return
        gate = node.requires_approval
        decided = (rec.approval or {}).get("result")
        if gate is not None and decided is None:
            # dsl.md: an approval in front of the task; the task runs only if approved.
            spec = gate.model_dump()
            spec.setdefault("title", None)
            spec["title"] = spec["title"] or f"Approve '{node.name or node.id}'?"
            self.begin_wait(plan, run, node, rec, scope, ctx, kind="approval", config=spec, gate=True)
            return
        if node.type in WAIT_TYPES:
            self.begin_wait(plan, run, node, rec, scope, ctx)
            return
        if node.type in CODE_TASK_TYPES:  # never in the worker: _on_exec dispatches them
            raise TaskFailure("TaskRunnerError", f"a {node.type} task reached the worker without its request")
        config = render(node.config, scope, ctx)
        result = self.task_types.run(node, config, run, scope, ctx)
        if decided is not None:
            result = TaskResult(result.output, {**result.names, "approval": decided})
        self.succeed(plan, run, node, rec, result, scope=scope, ctx=ctx)

    # ------------------------------------------------------------ outcomes

    def succeed(self, plan, run, node: Node, rec: TaskRecord, result: TaskResult, scope=None, ctx=None, consume=None,
                from_status: str = "RUNNING", printed: str | None = None) -> TaskRecord:
        """Record success with the task's ``outputs`` evaluated; an output expression error fails the task.
        ``printed``: what a code task's code printed, kept with the attempt."""
        if scope is None:
            _, _, recs, extra = self.load_for(plan, run.run_id, node, rec.task_id, node.deps)
            scope = self.scope_for(run, recs, node.deps, extra=extra)
        ctx = ctx or self.eval_context(rec)
        own = {"response": result.output, **result.names}
        try:
            output, exports = _evaluate_outputs(node, result.output, own, scope, ctx)
        except ExpressionError as exc:
            return self.fail(plan, run, node, rec, TaskFailure("ExpressionError", str(exc)), consume=consume,
                             from_status=from_status, printed=printed)
        try:
            size = len(json.dumps(output, default=str, allow_nan=False)) + len(
                json.dumps(exports, default=str, allow_nan=False))
        except ValueError:  # a provider's NaN or infinity (a JSON reply, a database float): never stored or shown
            return self.fail(plan, run, node, rec, TaskFailure(
                "InvalidOutput", "the result holds NaN or an infinity, which JSON cannot carry"), consume=consume,
                from_status=from_status, printed=printed)
        if size > MAX_OUTPUT:
            return self.fail(plan, run, node, rec, TaskFailure(
                "OutputTooLarge", f"the result is larger than {MAX_OUTPUT >> 20} MB"), consume=consume,
                from_status=from_status, printed=printed)
        return self.finish(plan, run, node, rec, "COMPLETED", output, exports=exports, consume=consume,
                           from_status=from_status, extra=_printed(printed))

    def fail(self, plan, run, node: Node, rec: TaskRecord, failure: TaskFailure, consume=None,
             from_status: str = "RUNNING", printed: str | None = None) -> TaskRecord:
        if is_retryable(node.retry, rec.attempt, failure.error_type):
            delay = retry_delay(node.retry, rec.attempt, self.rng)
            change = TaskChange(
                status="RETRYING",
                from_status=(from_status,),
                attempt=rec.attempt,
                votes=_vote_guard(rec, from_status),
                set={"attempt": rec.attempt + 1, "error": failure.as_error(), "lease_until": None,
                     "wake_at": iso(self.clock.now() + timedelta(seconds=delay)), "ctx_now": None,
                     **_printed(printed)},
            )
            new, applied = self._change(run.run_id, rec, change, consume=consume)
            if applied:
                self._schedule_retry(plan, run.run_id, node, new)
            return new
        clause = match_catch(plan.catch, failure.error_type) if node.role == "flow" and not rec.catch else None
        catch = None
        if clause is not None:
            # Caught: the task stays FAILED and waits for its handler before its dependents go on.
            catch = {"handler": instance_key(clause.handler, rec.task_id), "state": "pending", "retry": clause.retry}
        return self.finish(plan, run, node, rec, "FAILED", None, error=failure.as_error(), consume=consume,
                           from_status=from_status, extra={**({"catch": catch} if catch else {}), **_printed(printed)})

    def cancel_task(self, plan, run, node: Node, rec: TaskRecord) -> TaskRecord:
        """Stop a task of a halting run, whatever it was doing; its dependents are cancelled in turn."""
        change = TaskChange(status="CANCELLED", from_status=(None, "PENDING", "READY", "RUNNING", "WAITING",
                                                               "RETRYING"),
                            set={"ended_at": iso(self.clock.now()), "lease_until": None})
        new, applied = self._change(run.run_id, rec, change)
        if applied and rec.waiting_for == "child":
            self._halt_child(rec, f"the parent run {run.run_id} stopped its task '{node.id}'")
        if applied or new.status in TERMINAL:
            self.propagate(plan, run.run_id, node, new)
        return new

    def finish(self, plan, run, node: Node, rec: TaskRecord, status: str, output: Any, error=None, exports=None,
               consume: TokenConsume | None = None, from_status: str | None = "RUNNING",
               extra: dict[str, Any] | None = None) -> TaskRecord:
        never_started = from_status is None
        change = TaskChange(
            status=status,
            from_status=(None, "PENDING") if never_started else (from_status,),
            attempt=None if never_started else rec.attempt,
            votes=_vote_guard(rec, from_status),
            set={"output": output, "error": error, "ended_at": iso(self.clock.now()), "lease_until": None,
                 **(extra or {})},
        )
        new, applied = self._change(run.run_id, rec, change, exports=exports, consume=consume)
        if applied and consume is None:
            self.propagate(plan, run.run_id, node, new)
        return new

    def resolve_gate(self, plan, run, node: Node, rec: TaskRecord, decision: dict[str, Any],
                     consume: TokenConsume | None = None) -> TaskRecord:
        """A ``requires_approval`` decision: approved -> READY (the task then runs), else SKIPPED."""
        approval = {**(rec.approval or {}), "result": decision}
        if decision["decision"] != "APPROVED":
            return self.finish(plan, run, node, rec, "SKIPPED", None, consume=consume, from_status="WAITING",
                               extra={"approval": approval})
        change = TaskChange(status="READY", from_status=("WAITING",), attempt=rec.attempt,
                            set={"approval": approval, "wake_at": None}, votes=_vote_guard(rec, "WAITING"))
        new, applied = self._change(run.run_id, rec, change, consume=consume)
        if applied and consume is None:
            self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, key=rec.task_id, epoch=rec.redrive)
        return new

    def _change(self, run_id: str, rec: TaskRecord, change: TaskChange, exports=None,
                consume: TokenConsume | None = None) -> tuple[TaskRecord, bool]:
        """(new record, True), or (the winner's record, False) when another writer got there first
        (a duplicate, a timeout): their write stands. With a token to consume, a lost race is
        raised instead: the caller answers the link's sender."""
        try:
            return self.store.change_task(run_id, rec.task_id, change, exports=exports or None, consume=consume), True
        except ConditionFailed as lost:
            if consume is not None:
                raise
            return lost.current or rec, False

    def _schedule_retry(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        message = exec_message(run_id, plan.hash, node.id, rec.attempt, rec.task_id, epoch=rec.redrive)
        at = parse_iso(rec.wake_at) if rec.wake_at else self.clock.now()
        self.timers.schedule(self.timer_name(run_id, rec.task_id, rec.attempt, "retry", rec.redrive), at, message)

    # ------------------------------------------------------------ durable waits

    def begin_wait(self, plan, run, node: Node, rec: TaskRecord, scope, ctx: EvalContext,
                   kind: str | None = None, config: dict | None = None, gate: bool = False) -> None:
        now = self.clock.now()
        kind = kind or node.type
        config = render(node.config if config is None else config, scope, ctx)
        if kind == "wait":
            try:
                wake = wait_until(config, now, parse_duration, _parse_time)
            except (TypeError, ValueError) as exc:
                raise TaskFailure("InvalidConfig", str(exc)) from exc
            if wake <= now:
                self.succeed(plan, run, node, rec, TaskResult({"woke_at": iso(now)}), scope=scope, ctx=ctx)
                return
            waiting = {"waiting_for": "timer", "wake_at": iso(wake)}
        else:
            timeout = config.get("timeout")
            deadline = now + timedelta(seconds=parse_duration(timeout)) if timeout is not None else None
            waiting = {"waiting_for": kind, "nonce": self.signer.new_nonce(),
                       "wake_at": iso(deadline) if deadline else None}
            if kind == "approval":
                waiting["approval"] = {**_approval_request(config), "gate": gate}
        change = TaskChange(status="WAITING", from_status=("RUNNING",), attempt=rec.attempt,
                            set={**waiting, "lease_until": None})
        # Links are stored before the task shows as WAITING (and listed), so a link is never
        # seen before it works; a lost race leaves unused links to a nonce nobody was given.
        self.put_wait_tokens(plan, run, replace(rec, **waiting))
        rec, applied = self._change(run.run_id, rec, change)
        if applied:
            self.ensure_wait(plan, run, node, rec, links_stored=True)
            if rec.waiting_for == "approval":
                self.notify_approvers(plan, run.run_id, node, rec, "request")

    def put_wait_tokens(self, plan, run, rec: TaskRecord) -> None:
        """Store the hashes of a waiting task's links (no-op for those already stored)."""
        if rec.waiting_for == "approval":
            self._put_approval_tokens(plan, run, rec)
        elif rec.waiting_for == "callback":
            token = self.signer.token(run.run_id, rec.task_id, rec.attempt, rec.waiting_for, rec.nonce)
            expires = int(parse_iso(rec.wake_at).timestamp()) if rec.wake_at else None
            self.store.put_token(TokenRecord(self.signer.hash(token), run.run_id, rec.task_id, rec.attempt,
                                             rec.waiting_for, plan.hash, expires, epoch=rec.redrive))

    def ensure_wait(self, plan, run, node: Node, rec: TaskRecord, links_stored: bool = False) -> None:
        """The side effects of a WAITING task: its token and its timer. Idempotent, so a
        redelivery after a crash between the WAITING write and these calls completes them."""
        kind = "wake" if rec.waiting_for == "timer" else "timeout"
        if rec.waiting_for == "loop":
            self.ensure_loop(plan, run, node, rec)
            return
        if rec.waiting_for == "child":
            self._start_child(plan, run, node, rec)
        if not links_stored:  # a redelivery: idempotent, and heals records written before links came first
            self.put_wait_tokens(plan, run, rec)
        if rec.waiting_for == "approval" and self.tally_and_decide(plan, run, node, rec):
            return  # votes taken before a crash: decided now
        if rec.wake_at:
            message = {"k": kind, "run": run.run_id, "plan": plan.hash, "task": node.id, "attempt": rec.attempt}
            if rec.task_id != node.id:
                message["key"] = rec.task_id
            if rec.redrive:
                message["epoch"] = rec.redrive
            round_ = (rec.approval or {}).get("round", 0) if rec.waiting_for == "approval" else 0
            # an escalated approval has a new deadline: its own timer name (names are idempotency keys)
            self.timers.schedule(self.timer_name(run.run_id, rec.task_id, rec.attempt, f"{kind}{round_ or ''}",
                                                 rec.redrive),
                                 parse_iso(rec.wake_at), message)


def _printed(printed: str | None) -> dict[str, Any]:
    return {"printed": printed} if printed else {}


def _vote_guard(rec: TaskRecord, from_status: str | None) -> int | None:
    """A decision on a waiting approval holds only if no vote came in since the decider read the
    task (each vote bumps ``votes``): else it fails and the decider counts again."""
    return rec.votes if from_status == "WAITING" and rec.waiting_for == "approval" else None


def _should_run(node: Node, scope, ctx: EvalContext) -> bool:
    if node.when is not None:
        value = evaluate(node.when, scope, ctx) if isinstance(node.when, str) else node.when
        if not value:
            return False
    if node.skip_if is not None:
        value = evaluate(node.skip_if, scope, ctx) if isinstance(node.skip_if, str) else node.skip_if
        if value:
            return False
    return True


def _evaluate_outputs(node: Node, raw: Any, own: dict, scope, ctx) -> tuple[Any, dict[str, Any]]:
    if node.outputs is None:
        return raw, {}
    from statemachine.expressions import Scope

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


def _approval_request(config: dict[str, Any]) -> dict[str, Any]:
    approvers = config.get("approvers") or []
    approvers = [str(a) for a in (approvers if isinstance(approvers, list) else [approvers])]
    return {
        "title": config.get("title"),
        "description": config.get("description"),
        "details": config.get("details"),
        "approvers": approvers,
        "asked": approvers,  # everyone asked, over every round (escalation adds to it)
        "round": 0,
        "required_approvals": config.get("required_approvals", 1),
        "required_rejections": config.get("required_rejections", 1),
        "timeout": config.get("timeout"),
        "reminder": config.get("reminder"),
        "channels": list(config.get("channels") or ["email"]),
        "escalation_policy": config.get("escalation_policy"),
    }


def _parse_time(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        from datetime import timezone

        return datetime.fromtimestamp(value, tz=timezone.utc)
    return parse_iso(value)
