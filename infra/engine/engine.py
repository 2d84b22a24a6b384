"""The engine: applies the core's decisions through the ports, one message at a time.

Every message is safe to deliver more than once and to re-deliver after a crash
at any point of its handling: each step is a conditional write that either
applies or reveals the state a previous delivery left, from which the handler
carries on (see docs/durability.md). The message is deleted only after all of
its steps, so a crash between "write state" and "enqueue next" is healed by the
redelivery of the message that caused it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from statemachine.inputs import InputError, prepare_inputs
from statemachine.plan import Plan

from ..clock import iso, parse_iso
from ..dispatch.jobs import CodeResult
from ..links import LinkSigner
from ..ports import Clock, CodeDispatch, RunRecord, StateStore, Timers, WorkQueue
from ..tasks.registry import TaskTypes
from .approvals import ApprovalsMixin
from .blocks import BlocksMixin
from .children import ChildrenMixin
from .code_tasks import CodeTasks, Verdict, judge
from .dead_letters import DeadLettersMixin
from .execute import ExecuteMixin
from .loops import LoopsMixin
from .messages import MAX_INPUT, exec_message, node_of, timer_name
from .pausing import PausingMixin
from .propagate import PropagateMixin
from .redrive import RedriveMixin
from .signals import SignalsMixin
from .view import ViewMixin

RUN_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
log = logging.getLogger(__name__)


class Busy(Exception):
    """Another delivery holds this task's lease: hand the message back for later."""


@dataclass
class EngineSettings:
    public_url: str = "http://127.0.0.1:8080"
    lease_seconds: float = 60.0
    # Names reachable as ${env.NAME}: only what the deployment chooses to expose.
    env: dict[str, str] = field(default_factory=dict)
    # A callback/approval POST first enqueues a delayed self-check, so a crash
    # after its write still propagates; it must exceed the API's own timeout.
    safety_delay_seconds: int = 60
    # Module prefixes a custom task may name (LOOPLINE_CUSTOM_MODULES); empty: none.
    custom_modules: tuple[str, ...] = ()


class Engine(ExecuteMixin, PropagateMixin, BlocksMixin, LoopsMixin, ChildrenMixin, ApprovalsMixin, PausingMixin,
             DeadLettersMixin, SignalsMixin, ViewMixin, RedriveMixin):
    def __init__(
        self,
        store: StateStore,
        queue: WorkQueue,
        timers: Timers,
        signer: LinkSigner,
        clock: Clock,
        settings: EngineSettings | None = None,
        rng: random.Random | None = None,
        dispatch: CodeDispatch | None = None,
        task_types: TaskTypes | None = None,
    ):
        self.store = store
        self.queue = queue
        self.timers = timers
        self.signer = signer
        self.clock = clock
        self.settings = settings or EngineSettings()
        self.rng = rng or random.SystemRandom()
        # How each task type runs, with the deployment's settings (read from the environment once, here
        # unless the wiring built them).
        self.task_types = task_types if task_types is not None else TaskTypes.from_env(os.environ)
        # Code tasks run in the task runner, reached through ``dispatch``; an engine without one
        # (a tool that only reads runs) refuses to start them.
        self.code = CodeTasks(dispatch, timers, self.settings.custom_modules) if dispatch is not None else None
        self._plans: dict[str, Plan] = {}
        self._ancestors: dict[tuple[str, str], tuple[str, ...]] = {}

    # ------------------------------------------------------------ plans

    def plan(self, plan_hash: str) -> Plan:
        # Plans are content-addressed, so a cached plan can never be stale.
        cached = self._plans.get(plan_hash)
        if cached is None:
            text = self.store.get_plan(plan_hash)
            if text is None:
                raise LookupError(f"unknown plan {plan_hash}")
            cached = self._plans[plan_hash] = Plan.from_json(text)
        return cached

    def save_plan(self, plan: Plan) -> None:
        if plan.hash not in self._plans:
            self.store.put_plan(plan.hash, plan.to_json())
            self._plans[plan.hash] = plan

    def register_workflow(self, plan: Plan) -> None:
        """Registry of definitions (id + version -> plan), for runs by id and sub-workflows."""
        self.save_plan(plan)
        self.store.put_workflow(plan.workflow_id, plan.version, plan.hash)

    def find_workflow(self, ref: str) -> Plan | None:
        workflow_id, _, version = ref.partition("@")
        plan_hash = self.store.get_workflow(workflow_id, version or None)
        return self.plan(plan_hash) if plan_hash else None

    # ------------------------------------------------------------ runs

    def start_run(self, plan: Plan, inputs: dict[str, Any] | None = None, run_id: str | None = None,
                  parent: dict[str, Any] | None = None) -> str:
        """Validate the input, then make the run durable. Raises InputError on bad input."""
        prepared = prepare_inputs(plan, inputs)
        if len(json.dumps(prepared)) > MAX_INPUT:
            raise InputError(f"the input is larger than {MAX_INPUT >> 20} MB")
        self.save_plan(plan)
        run_id = run_id or uuid.uuid4().hex
        # Enqueue first: if we die before the run item is written, the worker
        # writes it from the message; POST /runs answers only after both.
        message = {"k": "start", "run": run_id, "plan": plan.hash, "inputs": prepared}
        if parent:
            message["parent"] = parent
        self.queue.send(message)
        self.store.create_run(self._new_run(plan, run_id, prepared, parent))
        return run_id

    def _new_run(self, plan: Plan, run_id: str, inputs: dict[str, Any], parent: dict | None = None) -> RunRecord:
        return RunRecord(
            run_id=run_id,
            plan_hash=plan.hash,
            workflow_id=plan.workflow_id,
            status="RUNNING",
            inputs=inputs,
            variables={v.name: v.default for v in plan.variables},
            created_at=iso(self.clock.now()),
            sinks_remaining=len(plan.sinks),
            parent=parent,
        )

    def handle(self, message: dict[str, Any], time_left: Callable[[], float] | None = None) -> None:
        """Process one work-queue message. Raises Busy to have it redelivered later. ``time_left``: the
        seconds the handling process has left (a Lambda's remaining time), when it is bounded."""
        kind = message.get("k")
        if kind == "exec":
            self._on_exec(message, time_left)
            return
        handler = {
            "start": self._on_start,
            "exec": self._on_exec,
            "wake": self._on_wake,
            "timeout": self._on_timeout,
            "run_timeout": self._on_run_timeout,
            "child_done": self._on_child_done,
            "notify": self._on_notify,
            "remind": self._on_remind,
            "redrive": self._on_redrive,
        }.get(kind)
        if handler is None:
            raise ValueError(f"unknown message kind {kind!r}")
        handler(message)

    def accept_result(self, body: str) -> str:
        """A code task's result from the result queue (infra/dispatch/jobs.py). It is recorded only for
        the attempt it was dispatched for; a forged, stale or repeated one changes nothing. A result
        that cannot be used is logged and dropped, never raised: it would only come back. Returns
        what was done (for the log); a storage error still raises, so the message comes back."""
        try:
            result = CodeResult.from_record(body)
            ref = result.attempt
            plan = self.plan(ref.plan_hash)
            node = plan.nodes[ref.task_id]
            if node_of(ref.key) != node.id or self.code is None:
                raise LookupError(f"{ref.key} is not an item of task {node.id}")
        except (ValueError, LookupError) as exc:
            log.warning("dropped a task result: %s", exc)
            return f"dropped: {exc}"
        visible = self.visible_tasks(plan, node)
        run, rec, recs, loop_extra = self.load_for(plan, ref.run_id, node, ref.key, visible)
        verdict, why = judge(run, rec, result)
        if verdict is Verdict.DROP:
            log.warning("dropped a task result for %s/%s attempt %s: %s", ref.run_id, ref.key, ref.attempt, why)
            return f"dropped: {why}"
        if verdict is Verdict.REPLAY:  # delivered again after its outcome was written: finish what it started
            if rec.status == "RETRYING":
                self._schedule_retry(plan, run.run_id, node, rec)
            else:
                self.propagate(plan, run.run_id, node, rec)
            return f"replayed: {why}"
        scope = self.task_scope(run, rec, recs, visible, loop_extra)
        outcome, printed = self.code.outcome(result, rec)
        if isinstance(outcome, Exception):
            self.fail(plan, run, node, rec, outcome, printed=printed)
            return f"failed: {outcome.error_type}"
        decided = (rec.approval or {}).get("result")
        if decided is not None:
            outcome = type(outcome)(outcome.output, {**outcome.names, "approval": decided})
        self.succeed(plan, run, node, rec, outcome, scope=scope, ctx=self.eval_context(rec), printed=printed)
        return "completed"

    def _on_start(self, msg: dict[str, Any]) -> None:
        plan = self.plan(msg["plan"])
        _, run = self.store.create_run(self._new_run(plan, msg["run"], msg.get("inputs") or {}, msg.get("parent")))
        if run.status in RUN_TERMINAL:
            return
        self.schedule_run_timeout(plan, run)
        if not plan.roots:
            self.finalize(plan, run)
            return
        for root in plan.roots:
            self.enqueue_exec(run.run_id, plan.hash, root, 1)

    def _on_run_timeout(self, msg: dict[str, Any]) -> None:
        """config.timeout: the run stops (WorkflowTimeout); what did not finish is cancelled, then the
        end steps run (compensation, finally) as for any failure."""
        plan = self.plan(msg["plan"])
        run = self.store.get_run(msg["run"])
        if run is None or run.status != "RUNNING" or run.end_comps is not None:
            return
        if int(msg.get("epoch") or 0) != run.redrives:
            return  # the timer of a run since redriven, which has a timer (and a deadline) of its own
        deadline = parse_iso(run.redriven_at or run.created_at) + timedelta(seconds=plan.timeout or 0)
        if deadline > self.clock.now() + timedelta(seconds=0.5):
            self.timers.schedule(self.timer_name(run.run_id, "$run", 1, "run_timeout", run.redrives), deadline, msg)
            return
        error = {"type": "WorkflowTimeout", "message": f"the workflow ran longer than {plan.timeout:g}s"}
        self.halt_now(plan, run, "$timeout", error)

    # ------------------------------------------------------------ helpers

    def enqueue_exec(self, run_id: str, plan_hash: str, task_id: str, attempt: int, delay: int = 0,
                     key: str | None = None, ctx: dict | None = None, epoch: int = 0) -> None:
        """``key`` names a role instance's item (a handler runs once per caught failure), ``ctx`` its context;
        ``epoch`` is the item's redrive stamp (messages older than it are stale)."""
        self.queue.send(exec_message(run_id, plan_hash, task_id, attempt, key, ctx, epoch), delay)

    def schedule_run_timeout(self, plan: Plan, run: RunRecord) -> None:
        """config.timeout: counted from the start, or from the last redrive (with a timer of its own)."""
        if plan.timeout is None:
            return
        deadline = parse_iso(run.redriven_at or run.created_at) + timedelta(seconds=plan.timeout)
        message = {"k": "run_timeout", "run": run.run_id, "plan": plan.hash}
        if run.redrives:
            message["epoch"] = run.redrives
        self.timers.schedule(self.timer_name(run.run_id, "$run", 0, "run_timeout", run.redrives), deadline, message)

    def timer_name(self, run_id: str, task_id: str, attempt: int, reason: str, epoch: int = 0) -> str:
        return timer_name(run_id, task_id, attempt, reason, epoch)
