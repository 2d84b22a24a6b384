"""Events from outside a running task: timers firing, deadlines, callbacks, approval decisions."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from statemachine.decisions import approval_output, approval_timeout_outcome
from statemachine.plan import TERMINAL

from ..clock import iso, parse_iso
from ..ports import ConditionFailed, TaskRecord, TokenConsume, TokenUsed
from ..tasks.base import TaskFailure, TaskResult
from .approvals import LinkError
from .messages import is_stale, node_of

log = logging.getLogger(__name__)


class SignalsMixin:
    # ------------------------------------------------------------ timers

    def _waiting(self, msg: dict[str, Any]):
        """Load the task a timer is about; None when the timer is stale."""
        plan = self.plan(msg["plan"])
        node = plan.nodes[msg["task"]]
        key = msg.get("key") or node.id
        run, recs = self.store.load(msg["run"], [key, *node.deps])
        if is_stale(msg, recs.get(key)):
            return None  # a timer set before a redrive reset its task
        if run is not None and run.status == "PAUSED":
            waiting = recs.get(key)
            if waiting is not None and waiting.status == "WAITING" and waiting.attempt == msg["attempt"]:
                self.park(run, node, waiting, msg)  # resume schedules this timer again
            return None
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
        self.approval_deadline(plan, run, node, rec)

    def approval_timed_out(self, plan, run, node, rec) -> TaskRecord:
        """Decide by the escalation policy; returns the task as written (or as the winner left it)."""
        action, value = approval_timeout_outcome((rec.approval or {}).get("escalation_policy"))
        if action == "fail":
            return self.fail(plan, run, node, rec, TaskFailure(value, f"approval '{node.id}' timed out"),
                             from_status="WAITING")
        # The votes cast short of the quorum are kept with the decision, as a decision by votes keeps them.
        output = {**approval_output(value, None, None, None, iso(self.clock.now())),
                  "votes": self.votes(run.run_id, rec)}
        if (rec.approval or {}).get("gate"):
            return self.resolve_gate(plan, run, node, rec, output)
        return self.succeed(plan, run, node, rec, TaskResult(output, {"approval": output}), from_status="WAITING")

    # ------------------------------------------------------------ links (called by the API)

    def resolve_link(self, token: str, kind: str, record_refusal: bool = True) -> tuple[Any, ...]:
        """The waiting task behind a link, or a LinkError with the status to answer. A refused use
        is recorded on the task (bounded: ``refuse``) unless ``record_refusal`` is False, as for
        every GET: reading a link never writes, so no one can grow a run by fetching a dead link."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise LinkError(404, "unknown link")
        record = self.store.get_token(self.signer.hash(token))
        if record is None or record.kind != kind:
            # Not tied to any request (forged, tampered, or another kind's): logged, not stored.
            log.warning("refused an unknown %s link (hash %s)", kind, self.signer.hash(token)[:12])
            raise LinkError(404, "unknown link")
        refuse = self.refuse if record_refusal else _not_recorded
        if record.used_by:
            refuse(record.run_id, record.task_id, "a used or expired link", record.approver)
            raise LinkError(410, "this link has already been used")
        if record.expires_at is not None and self.clock.now().timestamp() >= record.expires_at:
            refuse(record.run_id, record.task_id, "a used or expired link", record.approver)
            raise LinkError(410, "this link has expired")
        plan = self.plan(record.plan_hash)
        node = plan.nodes[node_of(record.task_id)]
        run, recs = self.store.load(record.run_id, [record.task_id, *node.deps])
        rec = recs.get(record.task_id)
        # A link made before a redrive reset its task (a lower epoch) is void, as is any link of an ended run.
        if run is None or rec is None or rec.status != "WAITING" or rec.attempt != record.attempt \
                or record.epoch < rec.redrive or run.status in ("COMPLETED", "FAILED", "CANCELLED"):
            refuse(record.run_id, record.task_id, "a link to a request already decided", record.approver)
            raise LinkError(410, "this request is no longer waiting for an answer")
        return record, plan, run, node, rec, recs

    def link_was_used(self, token: str) -> bool:
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return False
        record = self.store.get_token(self.signer.hash(token))
        return record is not None and bool(record.used_by)

    def approval_info(self, token: str) -> dict[str, Any]:
        """The request as one approver's link shows it (a GET: nothing is written). Other approvers'
        votes are theirs: only how many decisions were made is shown, never who said what."""
        record, plan, run, node, rec, _ = self.resolve_link(token, "approval", record_refusal=False)
        request = rec.approval or {}
        return {
            "run_id": run.run_id,
            "task_id": node.id,
            "workflow_id": plan.workflow_id,
            "title": request.get("title") or node.name or node.id,
            "description": request.get("description"),
            "details": request.get("details"),
            "approver": record.approver,
            "approvers": request.get("approvers") or [],
            "required_approvals": request.get("required_approvals", 1),
            "decisions_so_far": len(self.votes(run.run_id, rec)),
            "requested_at": rec.started_at,
            "deadline": rec.wake_at,
            "status": "PENDING",
        }

    def callback_info(self, token: str) -> dict[str, Any]:
        """What a callback link is waiting for (a GET: nothing is written)."""
        _, _, run, node, rec, _ = self.resolve_link(token, "callback", record_refusal=False)
        return {"run_id": run.run_id, "task_id": node.id, "status": "WAITING", "deadline": rec.wake_at}

    def submit_callback(self, token: str, body: Any) -> dict[str, Any]:
        record, plan, run, node, rec, recs = self.resolve_link(token, "callback")
        return self._consume(record, plan, run, node, rec, recs, TaskResult(body))

    def _consume(self, record, plan, run, node, rec, recs, result: TaskResult) -> dict[str, Any]:
        # A delayed self-check first: if we die after the write below, it propagates the task.
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, delay=self.settings.safety_delay_seconds,
                          key=rec.task_id, epoch=rec.redrive)
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
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, key=rec.task_id,
                          epoch=rec.redrive)  # the fast path
        return {"status": "accepted", "run_id": run.run_id, "task_id": node.id}


def _not_recorded(run_id: str, task_key: str, reason: str, approver: str | None) -> None:
    """A refusal answered to a GET: reading never writes."""
