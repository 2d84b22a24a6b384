"""Events from outside a running task: timers firing, deadlines, callbacks, approval decisions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from statemachine.decisions import approval_output, approval_timeout_outcome
from statemachine.plan import TERMINAL

from ..clock import iso, parse_iso
from ..ports import ConditionFailed, TaskRecord, TokenConsume, TokenUsed
from ..tasks.base import TaskFailure, TaskResult
from .messages import node_of

DECISIONS = ("APPROVED", "REJECTED")
MAX_COMMENT = 10_000


class LinkError(Exception):
    """A link that cannot be used: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class SignalsMixin:
    # ------------------------------------------------------------ timers

    def _waiting(self, msg: dict[str, Any]):
        """Load the task a timer is about; None when the timer is stale."""
        plan = self.plan(msg["plan"])
        node = plan.nodes[msg["task"]]
        key = msg.get("key") or node.id
        run, recs = self.store.load(msg["run"], [key, *node.deps])
        if run is None or run.status not in ("RUNNING", "COMPENSATING"):
            return None
        rec = recs.get(key) or TaskRecord(key)
        if rec.status in TERMINAL and rec.attempt == msg["attempt"]:
            self.propagate(plan, run.run_id, node, rec)  # a redelivery after the finishing write
            return None
        if rec.status != "WAITING" or rec.attempt != msg["attempt"]:
            return None
        if rec.wake_at and parse_iso(rec.wake_at) > self.clock.now() + timedelta(seconds=0.5):
            self.ensure_wait(plan, run, node, rec)  # delivered early: schedule again
            return None
        return plan, run, node, rec, recs

    def _on_wake(self, msg: dict[str, Any]) -> None:
        found = self._waiting(msg)
        if found:
            plan, run, node, rec, _ = found
            self.succeed(plan, run, node, rec, TaskResult({"woke_at": iso(self.clock.now())}),
                         from_status="WAITING")

    def _on_timeout(self, msg: dict[str, Any]) -> None:
        found = self._waiting(msg)
        if not found:
            return
        plan, run, node, rec, _ = found
        if rec.waiting_for == "callback":
            self.fail(plan, run, node, rec, TaskFailure("CallbackTimeout", f"no callback for task '{node.id}'"),
                      from_status="WAITING")
            return
        if rec.waiting_for == "child":
            self._halt_child(rec, f"sub-workflow '{node.id}' timed out")
            self.fail(plan, run, node, rec, TaskFailure("SubWorkflowTimeout", f"the sub-workflow ran longer than "
                                                        f"{node.timeout:g}s"), from_status="WAITING")
            return
        action, value = approval_timeout_outcome((rec.approval or {}).get("escalation_policy"))
        if action == "fail":
            self.fail(plan, run, node, rec, TaskFailure(value, f"approval '{node.id}' timed out"),
                      from_status="WAITING")
            return
        output = approval_output(value, None, None, None, iso(self.clock.now()))
        if (rec.approval or {}).get("gate"):
            self.resolve_gate(plan, run, node, rec, output)
            return
        self.succeed(plan, run, node, rec, TaskResult(output, {"approval": output}), from_status="WAITING")

    # ------------------------------------------------------------ links (called by the API)

    def resolve_link(self, token: str, kind: str) -> tuple[Any, ...]:
        """The waiting task behind a link, or a LinkError with the status to answer."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise LinkError(404, "unknown link")
        record = self.store.get_token(self.signer.hash(token))
        if record is None or record.kind != kind:
            raise LinkError(404, "unknown link")
        if record.used_by:
            raise LinkError(410, "this link has already been used")
        if record.expires_at is not None and self.clock.now().timestamp() >= record.expires_at:
            raise LinkError(410, "this link has expired")
        plan = self.plan(record.plan_hash)
        node = plan.nodes[node_of(record.task_id)]
        run, recs = self.store.load(record.run_id, [record.task_id, *node.deps])
        rec = recs.get(record.task_id)
        if run is None or rec is None or rec.status != "WAITING" or rec.attempt != record.attempt:
            raise LinkError(410, "this request is no longer waiting for an answer")
        return record, plan, run, node, rec, recs

    def approval_info(self, token: str) -> dict[str, Any]:
        record, plan, run, node, rec, _ = self.resolve_link(token, "approval")
        request = rec.approval or {}
        return {
            "run_id": run.run_id,
            "task_id": node.id,
            "workflow_id": plan.workflow_id,
            "title": request.get("title") or node.name or node.id,
            "description": request.get("description"),
            "details": request.get("details"),
            "approvers": request.get("approvers") or [],
            "requested_at": rec.started_at,
            "deadline": rec.wake_at,
            "status": "PENDING",
        }

    def submit_callback(self, token: str, body: Any) -> dict[str, Any]:
        record, plan, run, node, rec, recs = self.resolve_link(token, "callback")
        return self._consume(record, plan, run, node, rec, recs, TaskResult(body))

    def decide(self, token: str, decision: Any, comments: Any = None, approver: Any = None,
               data: Any = None) -> dict[str, Any]:
        if decision not in DECISIONS:
            raise LinkError(400, "decision must be APPROVED or REJECTED")
        if comments is not None and (not isinstance(comments, str) or len(comments) > MAX_COMMENT):
            raise LinkError(400, f"comments must be a string of at most {MAX_COMMENT} characters")
        record, plan, run, node, rec, recs = self.resolve_link(token, "approval")
        approvers = (rec.approval or {}).get("approvers") or []
        who = approver if isinstance(approver, str) and approver else (approvers[0] if approvers else None)
        output = approval_output(decision, who, comments, data, iso(self.clock.now()))
        result = self._consume(record, plan, run, node, rec, recs, TaskResult(output, {"approval": output}))
        return {**result, "decision": decision}

    def _consume(self, record, plan, run, node, rec, recs, result: TaskResult) -> dict[str, Any]:
        # A delayed self-check first: if we die after the write below, it propagates the task.
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, delay=self.settings.safety_delay_seconds,
                          key=rec.task_id)
        consume = TokenConsume(record.token_hash, uuid.uuid4().hex, int(self.clock.now().timestamp()))
        scope = self.scope_for(run, recs, node.deps)
        try:
            if (rec.approval or {}).get("gate"):
                self.resolve_gate(plan, run, node, rec, result.output, consume=consume)
            else:
                self.succeed(plan, run, node, rec, result, scope=scope, consume=consume, from_status="WAITING")
        except TokenUsed as exc:
            raise LinkError(410, "this link has already been used") from exc
        except ConditionFailed as exc:
            raise LinkError(410, "this request is no longer waiting for an answer") from exc
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, key=rec.task_id)  # the fast path
        return {"status": "accepted", "run_id": run.run_id, "task_id": node.id}
