"""Human approvals: a signed link per approver, votes, quorum, escalation, notifications.

The request lives on the waiting task (``rec.approval``); each approver's link is an HMAC
over (run, task, attempt, nonce, round, approver) and only its hash is stored, with the
approver and the deadline. A vote is its own item, created in the same transaction that
uses up the link, so a link decides once and an approver votes once per request; the
task is decided by the first tally that reaches the quorum (or enough rejections).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from statemachine.decisions import approval_output
from statemachine.plan import Node, Plan

from ..clock import iso, parse_iso
from ..ports import (
    ConditionFailed,
    RequestClosed,
    StoreError,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    TokenUsed,
)
from ..tasks.base import TaskResult
from ..tasks.registry import TaskTypes
from .messages import is_stale

log = logging.getLogger(__name__)
DECISIONS = ("APPROVED", "REJECTED")
MAX_COMMENT = 10_000
NOTIFY_TRIES = 5
REFUSALS_KEPT = 5  # refused uses of a task's links kept in full (all are counted)


class LinkError(Exception):
    """A link that cannot be used: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def refusal_key(task_key: str) -> str:
    """The item holding the refused uses of a task's links (infra/engine/redrive.py keeps it)."""
    return f"{task_key}:refused"


def vote_key(task_key: str, approver: str) -> str:
    return f"{task_key}:vote:{hashlib.sha256(approver.encode()).hexdigest()[:16]}"


def tally(request: dict[str, Any], votes: list[dict[str, Any]]) -> str | None:
    """APPROVED once `required_approvals` approved, REJECTED once `required_rejections` rejected."""
    rejected = sum(1 for v in votes if v["decision"] == "REJECTED")
    approved = sum(1 for v in votes if v["decision"] == "APPROVED")
    if rejected >= request.get("required_rejections", 1):
        return "REJECTED"
    if approved >= request.get("required_approvals", 1):
        return "APPROVED"
    return None


def decision_of(rec: TaskRecord) -> str:
    """The decision a request that no longer waits ended with (its status if nothing says more)."""
    result = (rec.approval or {}).get("result")
    if not isinstance(result, dict):
        result = rec.output if isinstance(rec.output, dict) else {}
    return result.get("decision") or rec.status


class ApprovalsMixin:
    # ------------------------------------------------------------ links

    def approval_links(self, run_id: str, rec: TaskRecord) -> list[tuple[str, str]]:
        """(approver, token) for the current round's approvers."""
        request = rec.approval or {}
        round_ = request.get("round", 0)
        # The HMAC covers run, task, attempt, approver and deadline (with the nonce and escalation round).
        return [(who, self.signer.token(run_id, rec.task_id, rec.attempt, "approval",
                                        f"{rec.nonce}|{round_}|{who}|{rec.wake_at or ''}"))
                for who in request.get("approvers") or []]

    def _put_approval_tokens(self, plan: Plan, run, rec: TaskRecord) -> None:
        expires = int(parse_iso(rec.wake_at).timestamp()) if rec.wake_at else None
        for who, token in self.approval_links(run.run_id, rec):
            self.store.put_token(TokenRecord(self.signer.hash(token), run.run_id, rec.task_id, rec.attempt,
                                             "approval", plan.hash, expires, approver=who, epoch=rec.redrive))

    # ------------------------------------------------------------ deciding

    def decide(self, token: str, decision: Any, comments: Any = None, approver: Any = None,
               data: Any = None) -> dict[str, Any]:
        if decision not in DECISIONS:
            raise LinkError(400, "decision must be APPROVED or REJECTED")
        if comments is not None and (not isinstance(comments, str) or len(comments) > MAX_COMMENT):
            raise LinkError(400, f"comments must be a string of at most {MAX_COMMENT} characters")
        record, plan, run, node, rec, recs = self.resolve_link(token, "approval")
        who = record.approver or (((rec.approval or {}).get("approvers") or [None])[0])
        if isinstance(approver, str) and approver and record.approver and approver != record.approver:
            self.refuse(run.run_id, rec.task_id, "a link used in another approver's name", record.approver)
            raise LinkError(403, "this link belongs to another approver")
        # A delayed self-check first: if we die after the vote, it tallies and carries the task on.
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, delay=self.settings.safety_delay_seconds,
                          key=rec.task_id, epoch=rec.redrive)
        vote = {"approver": who, "decision": decision, "comments": comments, "data": data,
                "decided_at": iso(self.clock.now())}
        # The vote counts only if the request still waits: the same transaction checks that and
        # bumps its vote count, which every decision write is conditioned on (_vote_guard).
        consume = TokenConsume(record.token_hash, uuid.uuid4().hex, int(self.clock.now().timestamp()),
                               vote_on=(rec.task_id, rec.attempt))
        try:
            self.store.change_task(run.run_id, vote_key(rec.task_id, who or ""), TaskChange(
                status="COMPLETED", from_status=(None, "PENDING"), set={"output": vote}), consume=consume)
        except TokenUsed as exc:
            self.refuse(run.run_id, rec.task_id, "a used or expired link", who)
            raise LinkError(410, "this link has already been used") from exc
        except RequestClosed as exc:
            self.refuse(run.run_id, rec.task_id, "a decision after the request was decided", who)
            raise LinkError(410, "this request has already been decided") from exc
        except ConditionFailed as exc:
            self.refuse(run.run_id, rec.task_id, "a second decision by the same approver", who)
            raise LinkError(409, "this approver has already decided") from exc
        # The answer is the request's actual state: this tally's decision, or the one another
        # decider (a vote, the deadline) wrote first, which counted this vote.
        outcome = self.tally_and_decide(plan, run, node, rec, reread=True)
        self.enqueue_exec(run.run_id, plan.hash, node.id, rec.attempt, key=rec.task_id,
                          epoch=rec.redrive)  # the fast path
        return {"status": "accepted", "run_id": run.run_id, "task_id": node.id, "decision": decision,
                "outcome": outcome or "PENDING"}

    def votes(self, run_id: str, rec: TaskRecord) -> list[dict[str, Any]]:
        everyone = (rec.approval or {}).get("asked") or (rec.approval or {}).get("approvers") or []
        keys = [vote_key(rec.task_id, who) for who in everyone]
        _, recs = self.store.load(run_id, keys)
        found = [recs[k].output for k in keys if k in recs and recs[k].status == "COMPLETED"]
        return sorted(found, key=lambda v: v["decided_at"])

    def tally_and_decide(self, plan: Plan, run, node: Node, rec: TaskRecord, reread: bool = False) -> str | None:
        """Decide the request if its votes reach the quorum; returns the decision taken (here or by
        whoever decided first), None while it waits. The decision is a conditional write from WAITING
        with the vote count read (_vote_guard): racing tallies decide once, and a vote that came in
        after the read makes the write fail, so the votes are counted again."""
        for _ in range(len((rec.approval or {}).get("asked") or []) + 3):  # each retry follows a new vote
            if reread:
                rec = self.store.load(run.run_id, [rec.task_id])[1].get(rec.task_id) or rec
            if rec.status != "WAITING":
                return decision_of(rec)
            votes = self.votes(run.run_id, rec)
            outcome = tally(rec.approval or {}, votes)
            if outcome is None:
                return None
            last = [v for v in votes if v["decision"] == outcome][-1]
            output = {**approval_output(outcome, last["approver"], last["comments"], last["data"],
                                        last["decided_at"]), "votes": votes}
            if (rec.approval or {}).get("gate"):
                new = self.resolve_gate(plan, run, node, rec, output)
            else:
                new = self.succeed(plan, run, node, rec, TaskResult(output, {"approval": output}),
                                   from_status="WAITING")
            if new.status != "WAITING":
                return decision_of(new)
            reread = True
        return None

    def refuse(self, run_id: str, task_key: str, reason: str, approver: str | None) -> None:
        """Record a refused use of a link (the approval itself is unchanged): one bounded record per
        task, a count and the last REFUSALS_KEPT, so no number of refused requests grows a run."""
        refusal = {"reason": reason, "approver": approver, "at": iso(self.clock.now())}
        try:
            self.store.record_refusal(run_id, refusal_key(task_key), refusal, REFUSALS_KEPT)
        except StoreError as exc:
            # The request is refused all the same; only its record is missing.
            log.warning("refused a link of %s/%s but could not record it: %s", run_id, task_key, exc)

    # ------------------------------------------------------------ operators

    def pending_approvals(self, run_id: str | None = None, approver: str | None = None,
                          base_url: str | None = None) -> list[dict[str, Any]]:
        """Requests waiting for a decision, one entry per approver yet to decide: of one run, or
        (from the unused links) of every run; optionally only one approver's."""
        if run_id is not None:
            view = self.describe_run(run_id, base_url) or {"approvals": []}
            entries = [{**a, "run_id": run_id} for a in view["approvals"]]
        else:
            now = self.clock.now().timestamp()
            waiting = {(t.run_id, t.task_id) for t in self.store.unused_tokens("approval")
                       if t.expires_at is None or t.expires_at > now}
            entries = []
            for run_id_, key in sorted(waiting):
                entries += [a for a in self.pending_approvals(run_id_, base_url=base_url) if a["key"] == key]
        return [e for e in entries if approver is None or e["approver"] == approver]

    def decide_for(self, run_id: str, task_id: str, decision: Any, comments: Any = None,
                   approver: str | None = None) -> dict[str, Any]:
        """An operator's decision by run and task, in an approver's name (one of those yet to decide)."""
        pending = [a for a in self.pending_approvals(run_id) if a["task_id"] == task_id]
        if not pending:
            raise LinkError(404, f"task '{task_id}' of run '{run_id}' is not waiting for an approval")
        chosen = [a for a in pending if approver in (None, a["approver"])]
        if approver is None and len(chosen) > 1:
            raise LinkError(400, "several approvers are asked: say which one ('approver')")
        if not chosen:
            raise LinkError(404, f"'{approver}' is not asked to decide task '{task_id}'")
        return self.decide(chosen[0]["url"].rsplit("/", 1)[1], decision, comments)

    # ------------------------------------------------------------ deadlines

    def approval_deadline(self, plan: Plan, run, node: Node, rec: TaskRecord) -> None:
        """The request's deadline passed: the votes recorded in time decide first; else escalate once if
        the policy says so, else decide by the policy. A vote that lands meanwhile makes the write fail
        (_vote_guard): then it all starts again from the votes."""
        for _ in range(len((rec.approval or {}).get("asked") or []) + 3):
            if rec.status != "WAITING" or self.tally_and_decide(plan, run, node, rec):
                return
            new, applied = self._deadline_step(plan, run, node, rec)
            if applied or new.status != "WAITING" or (new.approval or {}).get("round", 0) != (
                    rec.approval or {}).get("round", 0):
                return
            rec = self.store.load(run.run_id, [rec.task_id])[1].get(rec.task_id) or rec

    def _deadline_step(self, plan: Plan, run, node: Node, rec: TaskRecord) -> tuple[TaskRecord, bool]:
        request = dict(rec.approval or {})
        policy = request.get("escalation_policy") or {}
        if policy.get("action") == "escalate" and request.get("round", 0) == 0 and policy.get("next_approvers"):
            timeout = policy.get("timeout") or request.get("timeout")
            deadline = self.clock.now() + timedelta(seconds=timeout) if timeout else None
            nexts = list(policy["next_approvers"])
            request.update(round=1, approvers=nexts, asked=list(dict.fromkeys(request.get("asked", []) + nexts)),
                           escalated_at=iso(self.clock.now()))
            change = TaskChange(status="WAITING", from_status=("WAITING",), attempt=rec.attempt,
                                set={"approval": request, "wake_at": iso(deadline) if deadline else None},
                                votes=rec.votes)  # escalate only if no vote came in meanwhile
            self.put_wait_tokens(plan, run, replace(rec, **change.set))  # links work before they are listed
            new, applied = self._change(run.run_id, rec, change)
            if applied:
                self.ensure_wait(plan, run, node, new, links_stored=True)
                self.notify_approvers(plan, run.run_id, node, new, "escalation")
            return new, applied
        return self.approval_timed_out(plan, run, node, rec), False

    # ------------------------------------------------------------ notifications

    def notify_approvers(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord, reason: str) -> None:
        """One message per approver and channel, so a failing channel is retried alone."""
        request = rec.approval or {}
        voted = {v["approver"] for v in self.votes(run_id, rec)} if reason == "reminder" else set()
        for who in request.get("approvers") or []:
            if who in voted:
                continue
            for channel in request.get("channels") or ("email",):
                self.queue.send({"k": "notify", "run": run_id, "plan": plan.hash, "task": node.id,
                                 "key": rec.task_id, "attempt": rec.attempt, "round": request.get("round", 0),
                                 "approver": who, "channel": channel, "reason": reason, "epoch": rec.redrive})
        if request.get("reminder") and rec.wake_at and reason != "reminder":
            at = parse_iso(rec.wake_at) - timedelta(seconds=request["reminder"])
            self.timers.schedule(self.timer_name(run_id, rec.task_id, rec.attempt, f"remind{request.get('round', 0)}",
                                                 rec.redrive),
                                 at, {"k": "remind", "run": run_id, "plan": plan.hash, "task": node.id,
                                      "key": rec.task_id, "attempt": rec.attempt, "round": request.get("round", 0),
                                      "epoch": rec.redrive})

    def _on_remind(self, msg: dict[str, Any]) -> None:
        plan = self.plan(msg["plan"])
        node = plan.nodes[msg["task"]]
        run, recs = self.store.load(msg["run"], [msg["key"]])
        rec = recs.get(msg["key"])
        if run is None or rec is None or rec.status != "WAITING" or rec.attempt != msg["attempt"] \
                or is_stale(msg, rec):
            return
        if (rec.approval or {}).get("round", 0) == msg["round"]:
            self.notify_approvers(plan, run.run_id, node, rec, "reminder")

    def _on_notify(self, msg: dict[str, Any]) -> None:
        from ..tasks.base import TaskFailure

        plan = self.plan(msg["plan"])
        run, recs = self.store.load(msg["run"], [msg["key"]])
        rec = recs.get(msg["key"])
        if run is None or rec is None or rec.status != "WAITING" or rec.waiting_for != "approval" \
                or rec.attempt != msg["attempt"] or (rec.approval or {}).get("round", 0) != msg["round"] \
                or is_stale(msg, rec):
            return  # decided, or a later round (or redrive): nothing to tell
        links = dict(self.approval_links(run.run_id, rec))
        if msg["approver"] not in links:
            return
        url = self.link_url(run.run_id, rec, token=links[msg["approver"]])
        try:
            send_notification(msg["channel"], msg["approver"], rec.approval or {}, url, msg["reason"], run.run_id,
                              msg["key"], plan.workflow_id, rec.wake_at, self.task_types)
        except (TaskFailure, OSError) as exc:
            tries = msg.get("try", 1)
            log.warning("notifying %s by %s failed (try %d): %s", msg["approver"], msg["channel"], tries, exc)
            if tries < NOTIFY_TRIES:  # the request stays pending and listed whatever happens here
                self.queue.send({**msg, "try": tries + 1}, delay_seconds=min(2 ** tries, 60))


def send_notification(channel: str, approver: str, request: dict[str, Any], url: str, reason: str, run_id: str,
                      task_key: str, workflow_id: str, deadline: str | None, task_types: TaskTypes) -> None:
    """Tell one approver through one channel (the task types' providers do the sending)."""
    from ..tasks import http_task
    from ..tasks.common import TaskMeta

    title = request.get("title") or "Approval requested"
    lead = {"request": "Your decision is requested", "escalation": "Escalated to you",
            "reminder": "Reminder: your decision is still needed"}.get(reason, "Approval requested")
    text = f"{lead}: {title}\n\n{request.get('description') or ''}\n\nDecide here: {url}\n" + (
        f"Deadline: {deadline}\n" if deadline else "")
    meta = TaskMeta(task_id=task_key, run_id=run_id, workflow_id=workflow_id)
    if channel == "email" and "@" in approver:
        sender = os.environ.get("LOOPLINE_EMAIL_FROM") or "approvals@loopline.local"
        task_types.run_config("email", {"to": [approver], "subject": f"{lead}: {title}", "body": text,
                                        "format": "text", "from": sender}, meta)
    elif channel == "sms" and approver.startswith("+"):
        task_types.run_config("sms", {"to": approver, "body": f"{lead}: {title} {url}"}, meta)
    elif channel == "webhook":
        hook = os.environ.get("LOOPLINE_APPROVAL_WEBHOOK_URL")
        if hook:  # a Slack-compatible body: `text`, plus the request for other receivers
            body = {"text": f"{lead}: {title} ({approver}) <{url}|Decide>", "approver": approver, "url": url,
                    "title": title, "reason": reason, "run_id": run_id, "deadline": deadline}
            reply = http_task.fetch("POST", hook, policy=task_types.settings.egress(),
                                    headers={"Content-Type": "application/json"},
                                    data=http_task.encode_body(body, {"Content-Type": "application/json"}))
            if reply.status >= 400:
                raise OSError(f"webhook answered {reply.status}")
