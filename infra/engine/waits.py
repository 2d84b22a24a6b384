"""Durable waits: a task that waits for a timer, a link (callback, approval), its iterations or a child run.

Nothing runs meanwhile: the task is WAITING with what it waits for recorded, its links stored
(only their hashes) and its timer armed. Everything after the WAITING write is idempotent
(``ensure_wait``), so a redelivery after a crash between the write and those calls completes them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from statemachine.decisions import wait_until
from statemachine.durations import parse_duration
from statemachine.expressions import EvalContext, ExpressionError, Scope, render
from statemachine.messages import Kind, TimerFired
from statemachine.plan import Node, Plan
from statemachine.rewind import undoing
from statemachine.status import RUN_MOVING, TASK_ENDED, RunStatus, TaskStatus, WaitingFor
from statemachine.task_configs import callback_id_error

from ..clock import iso, parse_iso
from ..links import LinkSigner
from ..ports import Clock, RunRecord, StateStore, TaskChange, TaskRecord, TokenRecord
from ..tasks.base import TaskFailure, TaskResult
from .approvals import Approvals
from .ballots import Ballots
from .children import Children
from .deadlines import arm_deadline
from .halting import Halting
from .keys import is_stale
from .loops import Loops
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans
from .propagate import Propagation


class Waits:
    def __init__(self, store: StateStore, clock: Clock, signer: LinkSigner, plans: Plans, messenger: Messenger,
                 outcomes: Outcomes, propagation: Propagation, ballots: Ballots, approvals: Approvals, loops: Loops,
                 children: Children, halting: Halting):
        self.store = store
        self.clock = clock
        self.signer = signer
        self.plans = plans
        self.messenger = messenger
        self.outcomes = outcomes
        self.propagation = propagation
        self.ballots = ballots
        self.approvals = approvals
        self.loops = loops
        self.children = children
        self.halting = halting

    def begin_wait(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, scope: Scope, ctx: EvalContext,
                   kind: str | None = None, config: dict[str, Any] | None = None, gate: bool = False) -> None:
        now = self.clock.now()
        kind = kind or node.type
        config = render(node.config if config is None else config, scope, ctx)
        waiting: dict[str, Any]
        if kind == "wait" and config.get("event") is not None:  # waits as a callback does, found by its name
            if why := callback_id_error(config["event"], "event"):
                raise TaskFailure("InvalidConfig", why)
            kind, config = WaitingFor.CALLBACK, {"timeout": config.get("timeout"), "event": config["event"]}
        if kind == "wait":
            try:
                wake = wait_until(config, now, parse_duration, _parse_time)
            except (TypeError, ValueError) as exc:
                raise TaskFailure("InvalidConfig", str(exc)) from exc
            if wake <= now:
                self.outcomes.succeed(plan, run, node, rec, TaskResult({"woke_at": iso(now)}), scope=scope, ctx=ctx)
                return
            waiting = {"waiting_for": WaitingFor.TIMER, "wake_at": iso(wake)}
        else:
            timeout = config.get("timeout")
            deadline = now + timedelta(seconds=parse_duration(timeout)) if timeout is not None else None
            waiting = {"waiting_for": WaitingFor(kind or ""), "nonce": self.signer.new_nonce(),
                       "wake_at": iso(deadline) if deadline else None}
            if kind == WaitingFor.APPROVAL:
                waiting["approval"] = {**_approval_request(config), "gate": gate}
            elif config.get("event") is not None:
                waiting["approval"] = {"event": config["event"]}
            elif config.get("callback_id") is not None:  # POST /runs/{id}/callbacks/{callback_id} finds it
                if why := callback_id_error(config["callback_id"]):
                    raise TaskFailure("InvalidConfig", why)
                waiting["approval"] = {"callback_id": config["callback_id"]}
        change = TaskChange(status=TaskStatus.WAITING, from_status=(TaskStatus.RUNNING,), attempt=rec.attempt,
                            set={**waiting, "lease_until": None})
        # Links are stored before the task shows as WAITING (and listed), so a link is never
        # seen before it works; a lost race leaves unused links to a nonce nobody was given.
        self.put_wait_tokens(plan, run, replace(rec, **waiting))
        why = f"until {waiting['wake_at']}" if kind == "wait" else (
            f"for its {kind}" + (f" until {waiting['wake_at']}" if waiting["wake_at"] else ""))
        rec, applied = self.outcomes.change(run.run_id, rec, change, f"waiting {why}")
        if applied:
            self.ensure_wait(plan, run, node, rec, links_stored=True)
            if rec.waiting_for == WaitingFor.APPROVAL:
                self.approvals.notify_approvers(plan, run.run_id, node, rec, "request")

    def due_now(self, node: Node, scope: Scope, ctx: EvalContext, now: datetime) -> TaskResult | None:
        """A ``wait`` task's result if it is due already (``0s``, a time past), else None: its claim can
        then end it in the same write (Attempts._known_now). A config that does not render or parse is
        None too: begin_wait, on the usual path, fails the task with the reason."""
        if node.config.get("event") is not None:
            return None  # waits for its event, whenever it comes
        try:
            wake = wait_until(render(node.config, scope, ctx), now, parse_duration, _parse_time)
        except (ExpressionError, TypeError, ValueError):
            return None
        return TaskResult({"woke_at": iso(now)}) if wake <= now else None

    def put_wait_tokens(self, plan: Plan, run: RunRecord, rec: TaskRecord) -> None:
        """Store the hashes of a waiting task's links (no-op for those already stored)."""
        if rec.waiting_for == WaitingFor.APPROVAL:
            self.ballots.put_tokens(plan, run, rec)
        elif rec.waiting_for == WaitingFor.CALLBACK:
            token = self.signer.token(run.run_id, rec.task_id, rec.attempt, rec.waiting_for, rec.nonce or "")
            expires = int(parse_iso(rec.wake_at).timestamp()) if rec.wake_at else None
            self.store.put_token(TokenRecord(self.signer.hash(token), run.run_id, rec.task_id, rec.attempt,
                                             rec.waiting_for, plan.hash, expires, epoch=rec.redrive))

    def ensure_wait(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, links_stored: bool = False) -> None:
        """The side effects of a WAITING task: its links, its timer (and for a loop its first
        iterations, for a sub-workflow its child run). Idempotent."""
        if rec.waiting_for == WaitingFor.LOOP:
            self.loops.ensure_loop(plan, run, node, rec)
            return
        if rec.waiting_for == WaitingFor.CHILD:
            self.children.start_child(plan, run, node, rec)
        if not links_stored:  # a redelivery: idempotent, and heals records written before links came first
            self.put_wait_tokens(plan, run, rec)
        if rec.waiting_for == WaitingFor.APPROVAL:
            self.approvals.settle(plan, run, node, rec)  # votes taken before a crash decide it now
            return
        arm_deadline(self.messenger, plan, run.run_id, node, rec)

    # ------------------------------------------------------------ timers

    def on_timer(self, msg: TimerFired) -> None:
        """A wait's wake-up, or a deadline (a callback's, an approval's, a sub-workflow's)."""
        found = self._waiting(msg)
        if found is None:
            return
        plan, run, node, rec = found
        if msg.kind is Kind.WAKE:
            self.outcomes.succeed(plan, run, node, rec, TaskResult({"woke_at": iso(self.clock.now())}),
                                  from_status=TaskStatus.WAITING)
        elif rec.waiting_for == WaitingFor.CALLBACK and (event := (rec.approval or {}).get("event")):
            self.outcomes.fail(plan, run, node, rec, TaskFailure("EventTimeout", f"no event '{event}' for task "
                                                                 f"'{node.id}'"), from_status=TaskStatus.WAITING)
        elif rec.waiting_for == WaitingFor.CALLBACK:
            self.outcomes.fail(plan, run, node, rec, TaskFailure("CallbackTimeout", f"no callback for task "
                                                                 f"'{node.id}'"), from_status=TaskStatus.WAITING)
        elif rec.waiting_for == WaitingFor.CHILD:
            self.halting.halt_child(rec, f"sub-workflow '{node.id}' timed out")
            self.outcomes.fail(plan, run, node, rec, TaskFailure(
                "SubWorkflowTimeout", f"the sub-workflow ran longer than {node.timeout or 0:g}s"),
                from_status=TaskStatus.WAITING)
        else:
            self.approvals.approval_deadline(plan, run, node, rec)

    def _waiting(self, msg: TimerFired) -> tuple[Plan, RunRecord, Node, TaskRecord] | None:
        """The task a timer is about, if it still waits for it."""
        plan = self.plans.get(msg.plan)
        node = plan.nodes[msg.task]
        key = msg.item
        run, recs = self.store.load(msg.run, [key, *node.deps])
        if is_stale(msg.epoch, recs.get(key)):
            return None  # a timer set before a redrive reset its task
        held = run is not None and undoing(run.status, run.rewinding, node.role)  # a rewind's compensation
        if run is not None and run.status == RunStatus.PAUSED and not held:
            waiting = recs.get(key)
            if waiting is not None and waiting.status == TaskStatus.WAITING and waiting.attempt == msg.attempt:
                self.outcomes.park(run, waiting, None)  # resume schedules this timer again
            return None
        if run is None or (run.status not in RUN_MOVING and not held):
            return None
        rec = recs.get(key) or TaskRecord(key)
        if rec.status in TASK_ENDED and rec.attempt == msg.attempt:
            self.propagation.propagate(plan, run.run_id, node, rec)  # a redelivery after the finishing write
            return None
        if rec.status != TaskStatus.WAITING or rec.attempt != msg.attempt:
            return None
        if rec.wake_at and parse_iso(rec.wake_at) > self.clock.now() + timedelta(seconds=0.5):
            self.ensure_wait(plan, run, node, rec)  # delivered early: schedule again
            return None
        return plan, run, node, rec


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
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return parse_iso(value)
