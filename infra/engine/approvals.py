"""Human approvals: votes, quorum, the deadline (escalation or the policy's decision), notifications.

The request lives on the waiting task (``rec.approval``); its links and votes are ballots.py's.
A vote is created in the same transaction that uses up the link, so a link decides once and an
approver votes once per request; the task is decided by the first tally that reaches the quorum
(or enough rejections), with a write conditioned on the vote count it read.
"""

from __future__ import annotations

import copy
import logging
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from statemachine.decisions import approval_output, approval_timeout_outcome, tally
from statemachine.messages import Notify, Remind, retried
from statemachine.plan import Node, Plan
from statemachine.state import ApprovalRequest, EscalationPolicy
from statemachine.status import TaskStatus, WaitingFor

from ..clock import iso, parse_iso
from ..ports import (
    Clock,
    ConditionFailed,
    RequestClosed,
    RunRecord,
    StateStore,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenUsed,
)
from ..tasks.base import TaskFailure, TaskResult
from ..tasks.registry import TaskTypes
from .ballots import Ballots
from .deadlines import arm_deadline
from .journal import Journal
from .keys import is_stale, timer_name, vote_key
from .links import LinkError, Links
from .messenger import Messenger
from .notifications import send_notification
from .outcomes import Outcomes
from .plans import Plans
from .views import Views

log = logging.getLogger(__name__)
DECISIONS = ("APPROVED", "REJECTED")
MAX_COMMENT = 10_000
NOTIFY_TRIES = 5


def _decided(rec: TaskRecord, decision: str) -> dict[str, Any]:
    """What an approval task's end keeps of its decision besides its output: the task's ``outputs`` may
    map the output to anything (a graph's approval node keeps only what merges into the context), and
    the decision's answer (``outcome``) must still say APPROVED or REJECTED."""
    return {"approval": {**(rec.approval or {}), "result": {"decision": decision}}}


def decision_of(rec: TaskRecord) -> str:
    """The decision a request that no longer waits ended with (its status if nothing says more)."""
    result = (rec.approval or {}).get("result")
    if not isinstance(result, dict):
        result = rec.output if isinstance(rec.output, dict) else {}
    return result.get("decision") or rec.status


class Approvals:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, messenger: Messenger, ballots: Ballots,
                 links: Links, outcomes: Outcomes, views: Views, journal: Journal, task_types: TaskTypes):
        self.store = store
        self.task_types = task_types  # approvers are told through the email, sms and http providers
        self.journal = journal
        self.clock = clock
        self.plans = plans
        self.messenger = messenger
        self.ballots = ballots
        self.links = links
        self.outcomes = outcomes
        self.views = views

    # ------------------------------------------------------------ deciding

    def decide(self, token: str, decision: Any, comments: Any = None, approver: Any = None,
               data: Any = None) -> dict[str, Any]:
        if decision not in DECISIONS:
            raise LinkError(400, "decision must be APPROVED or REJECTED")
        if comments is not None and (not isinstance(comments, str) or len(comments) > MAX_COMMENT):
            raise LinkError(400, f"comments must be a string of at most {MAX_COMMENT} characters")
        _check_approver(approver)
        found = self.links.resolve(token, "approval")
        record, plan, run, node, rec = found.token, found.plan, found.run, found.node, found.rec
        approvers = rec.approval.get("approvers") if rec.approval else None
        who = record.approver or (approvers[0] if approvers else None)
        if isinstance(approver, str) and approver and record.approver and approver != record.approver:
            self.links.refuse(run.run_id, rec.task_id, "a link used in another approver's name", record.approver)
            raise LinkError(403, "this link belongs to another approver")
        # A delayed self-check first: if we die after the vote, it tallies and carries the task on.
        self.links.self_check(plan, run, node, rec, delay=self.links.safety_delay_seconds)
        vote = {"approver": who, "decision": decision, "comments": comments, "data": data,
                "decided_at": iso(self.clock.now())}
        # The vote counts only if the request still waits: the same transaction checks that and
        # bumps its vote count, which every decision write is conditioned on (outcomes._vote_guard).
        consume = TokenConsume(record.token_hash, uuid.uuid4().hex, int(self.clock.now().timestamp()),
                               vote_on=(rec.task_id, rec.attempt))
        try:
            cast = self.store.change_task(run.run_id, vote_key(rec.task_id, who or ""), TaskChange(
                status=TaskStatus.COMPLETED, from_status=(None, TaskStatus.PENDING),
                set={"output": vote, "last_change": self.journal.note(f"{who} voted {decision} on {rec.task_id}")}),
                consume=consume)
        except TokenUsed as exc:
            self.links.refuse(run.run_id, rec.task_id, "a used or expired link", who)
            raise LinkError(410, "this link has already been used") from exc
        except RequestClosed as exc:
            self.links.refuse(run.run_id, rec.task_id, "a decision after the request was decided", who)
            raise LinkError(410, "this request has already been decided") from exc
        except ConditionFailed as exc:
            self.links.refuse(run.run_id, rec.task_id, "a second decision by the same approver", who)
            raise LinkError(409, "this approver has already decided") from exc
        self.journal.task(run.run_id, None, cast, f"{who} voted {decision} on {rec.task_id}")
        # The answer is the request's actual state: this tally's decision, or the one another
        # decider (a vote, the deadline) wrote first, which counted this vote.
        outcome = self.tally_and_decide(plan, run, node, rec, reread=True)
        self.links.self_check(plan, run, node, rec)  # the fast path
        return {"status": "accepted", "run_id": run.run_id, "task_id": node.id, "decision": decision,
                "outcome": outcome or "PENDING"}

    def tally_and_decide(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord,
                         reread: bool = False) -> str | None:
        """Decide the request if its votes reach the quorum; returns the decision taken (here or by
        whoever decided first), None while it waits. The decision is a conditional write from WAITING
        with the vote count read: racing tallies decide once, and a vote that came in after the read
        makes the write fail, so the votes are counted again."""
        for _ in range(len((rec.approval or {}).get("asked") or []) + 3):  # each retry follows a new vote
            if reread:
                rec = self.store.load(run.run_id, [rec.task_id])[1].get(rec.task_id) or rec
            if rec.status != TaskStatus.WAITING:
                return decision_of(rec)
            votes = self.ballots.votes(run.run_id, rec)
            outcome = tally(rec.approval or {}, votes)
            if outcome is None:
                return None
            last = [v for v in votes if v["decision"] == outcome][-1]
            output = {**approval_output(outcome, last["approver"], last["comments"], last["data"],
                                        last["decided_at"]), "votes": votes}
            if (rec.approval or {}).get("gate"):
                new = self.outcomes.resolve_gate(plan, run, node, rec, output)
            else:
                new = self.outcomes.succeed(plan, run, node, rec, TaskResult(output, {"approval": output}),
                                            from_status=TaskStatus.WAITING, also_set=_decided(rec, outcome))
            if new.status != TaskStatus.WAITING:
                return decision_of(new)
            reread = True
        return None

    def decide_for(self, run_id: str, task_id: str, decision: Any, comments: Any = None,
                   approver: str | None = None) -> dict[str, Any]:
        """An operator's decision by run and task, in an approver's name (one of those yet to decide)."""
        _check_approver(approver)
        pending = [a for a in self.views.pending_approvals(run_id) if a["task_id"] == task_id]
        if not pending:
            raise LinkError(404, f"task '{task_id}' of run '{run_id}' is not waiting for an approval")
        chosen = [a for a in pending if approver in (None, a["approver"])]
        if approver is None and len(chosen) > 1:
            raise LinkError(400, "several approvers are asked: say which one ('approver')")
        if not chosen:
            raise LinkError(404, f"'{approver}' is not asked to decide task '{task_id}'")
        return self.decide(chosen[0]["url"].rsplit("/", 1)[1], decision, comments)

    def approval_info(self, token: str) -> dict[str, Any]:
        """The request as one approver's link shows it (a GET: nothing is written). Other approvers'
        votes are theirs: only how many decisions were made is shown, never who said what."""
        found = self.links.resolve(token, "approval", record_refusal=False)
        run, node, rec = found.run, found.node, found.rec
        request = rec.approval or {}
        return {
            "run_id": run.run_id,
            "task_id": node.id,
            "workflow_id": found.plan.workflow_id,
            "title": request.get("title") or node.name or node.id,
            "description": request.get("description"),
            "details": request.get("details"),
            "approver": found.token.approver,
            "approvers": request.get("approvers") or [],
            "required_approvals": request.get("required_approvals", 1),
            "decisions_so_far": len(self.ballots.votes(run.run_id, rec)),
            "requested_at": rec.started_at,
            "deadline": rec.wake_at,
            "status": "PENDING",
        }

    # ------------------------------------------------------------ deadlines

    def approval_deadline(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> None:
        """The request's deadline passed: the votes recorded in time decide first; else escalate once if
        the policy says so, else decide by the policy. A vote that lands meanwhile makes the write fail:
        then it all starts again from the votes."""
        for _ in range(len((rec.approval or {}).get("asked") or []) + 3):
            if rec.status != TaskStatus.WAITING or self.tally_and_decide(plan, run, node, rec):
                return
            new, applied = self._deadline_step(plan, run, node, rec)
            if applied or new.status != TaskStatus.WAITING or (new.approval or {}).get("round", 0) != (
                    rec.approval or {}).get("round", 0):
                return
            rec = self.store.load(run.run_id, [rec.task_id])[1].get(rec.task_id) or rec

    def _deadline_step(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> tuple[TaskRecord, bool]:
        request: ApprovalRequest = copy.copy(rec.approval) if rec.approval else {}
        policy: EscalationPolicy = request.get("escalation_policy") or {}
        if policy.get("action") == "escalate" and request.get("round", 0) == 0 and policy.get("next_approvers"):
            timeout = policy.get("timeout") or request.get("timeout")
            deadline = self.clock.now() + timedelta(seconds=timeout) if timeout else None
            nexts = list(policy["next_approvers"])
            request["round"] = 1
            request["approvers"] = nexts
            request["asked"] = list(dict.fromkeys(request.get("asked", []) + nexts))
            request["escalated_at"] = iso(self.clock.now())
            change = TaskChange(status=TaskStatus.WAITING, from_status=(TaskStatus.WAITING,), attempt=rec.attempt,
                                set={"approval": request, "wake_at": iso(deadline) if deadline else None},
                                votes=rec.votes)  # escalate only if no vote came in meanwhile
            self.ballots.put_tokens(plan, run, replace(rec, **change.set))  # links work before they are listed
            new, applied = self.outcomes.change(run.run_id, rec, change, f"escalated to {', '.join(nexts)}")
            if applied:
                self.settle(plan, run, node, new)
                self.notify_approvers(plan, run.run_id, node, new, "escalation")
            return new, applied
        return self._timed_out(plan, run, node, rec), False

    def settle(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> None:
        """A waiting request with its links stored: decided now if its votes reach the quorum (votes
        taken before a crash), else its deadline armed."""
        if not self.tally_and_decide(plan, run, node, rec):
            arm_deadline(self.messenger, plan, run.run_id, node, rec)

    def _timed_out(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord) -> TaskRecord:
        """Decide by the escalation policy; returns the task as written (or as the winner left it)."""
        action, value = approval_timeout_outcome((rec.approval or {}).get("escalation_policy"))
        if action == "fail":
            return self.outcomes.fail(plan, run, node, rec, TaskFailure(value, f"approval '{node.id}' timed out"),
                                      from_status=TaskStatus.WAITING)
        # The votes cast short of the quorum are kept with the decision, as a decision by votes keeps them.
        output = {**approval_output(value, None, None, None, iso(self.clock.now())),
                  "votes": self.ballots.votes(run.run_id, rec)}
        if (rec.approval or {}).get("gate"):
            return self.outcomes.resolve_gate(plan, run, node, rec, output)
        return self.outcomes.succeed(plan, run, node, rec, TaskResult(output, {"approval": output}),
                                     from_status=TaskStatus.WAITING, also_set=_decided(rec, value))

    # ------------------------------------------------------------ notifications

    def notify_approvers(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord, reason: str) -> None:
        """One message per approver and channel, so a failing channel is retried alone."""
        request = rec.approval or {}
        round_ = request.get("round", 0)
        voted = {v["approver"] for v in self.ballots.votes(run_id, rec)} if reason == "reminder" else set()
        for who in request.get("approvers") or []:
            if who in voted:
                continue
            for channel in request.get("channels") or ("email",):
                self.messenger.send(Notify(run_id, plan.hash, node.id, rec.task_id, rec.attempt, round_, who,
                                           channel, reason, epoch=rec.redrive))
        reminder = request.get("reminder")
        if reminder and rec.wake_at and reason != "reminder":
            at = parse_iso(rec.wake_at) - timedelta(seconds=reminder)
            self.messenger.schedule(timer_name(run_id, rec.task_id, rec.attempt, f"remind{round_}", rec.redrive),
                                    at, Remind(run_id, plan.hash, node.id, rec.task_id, rec.attempt, round_,
                                               epoch=rec.redrive))

    def on_remind(self, msg: Remind) -> None:
        plan = self.plans.get(msg.plan)
        node = plan.nodes[msg.task]
        run, recs = self.store.load(msg.run, [msg.key])
        rec = recs.get(msg.key)
        if run is None or rec is None or rec.status != TaskStatus.WAITING or rec.attempt != msg.attempt \
                or is_stale(msg.epoch, rec):
            return
        if (rec.approval or {}).get("round", 0) == msg.round:
            self.notify_approvers(plan, run.run_id, node, rec, "reminder")

    def on_notify(self, msg: Notify) -> None:
        plan = self.plans.get(msg.plan)
        run, recs = self.store.load(msg.run, [msg.key])
        rec = recs.get(msg.key)
        if run is None or rec is None or rec.status != TaskStatus.WAITING or rec.waiting_for != WaitingFor.APPROVAL \
                or rec.attempt != msg.attempt or (rec.approval or {}).get("round", 0) != msg.round \
                or is_stale(msg.epoch, rec):
            return  # decided, or a later round (or redrive): nothing to tell
        links = dict(self.ballots.links(run.run_id, rec))
        if msg.approver not in links:
            return
        url = self.links.url(run.run_id, rec, token=links[msg.approver])
        try:
            send_notification(msg.channel, msg.approver, rec.approval or {}, url, msg.reason, run.run_id,
                              msg.key, plan.workflow_id, rec.wake_at, self.task_types, at=self.clock.now())
        except (TaskFailure, OSError) as exc:
            log.warning("notifying %s by %s failed (try %d): %s", msg.approver, msg.channel, msg.tries, exc)
            if msg.tries < NOTIFY_TRIES:  # the request stays pending and listed whatever happens here
                # A timer on the engine's clock, not a queue delay: a movable clock makes it due (a
                # delay would follow the real one); under 15 minutes it is an SQS delay on AWS all the same.
                at = self.clock.now() + timedelta(seconds=min(2 ** msg.tries, 60))
                reason = f"notify{msg.round}.{msg.reason}.{msg.channel}.{msg.tries + 1}.{msg.approver}"
                self.messenger.schedule(timer_name(msg.run, msg.key, msg.attempt, reason, msg.epoch), at, retried(msg))


def _check_approver(approver: Any) -> None:
    """A name, or none: anything else was ignored (a link's own approver decided), now refused."""
    if approver is not None and not isinstance(approver, str):
        raise LinkError(400, "approver must be a string (an approver's address)")
