"""The links a waiting task hands out (callbacks, approvals): resolving one, refusing one, a callback's answer.

A refused use of a link is recorded on its task (bounded: one record per task with a count and
the last few), except for a GET: reading a link never writes, so no one can grow a run by
fetching a dead link.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from statemachine.plan import Node, Plan
from statemachine.status import RUN_ENDED, TaskStatus, WaitingFor
from statemachine.task_configs import callback_id_error

from ..clock import iso
from ..links import LinkSigner
from ..ports import (
    Clock,
    ConditionFailed,
    RunRecord,
    StateStore,
    StoreError,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    TokenUsed,
)
from ..tasks.base import TaskResult
from .keys import node_of, refusal_key
from .messenger import Messenger
from .outcomes import Outcomes
from .plans import Plans
from .reading import Scopes

log = logging.getLogger(__name__)
REFUSALS_KEPT = 5  # refused uses of a task's links kept in full (all are counted)


class LinkError(Exception):
    """A link that cannot be used: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Resolved:
    """The waiting task behind a link, as read when the link was resolved."""

    token: TokenRecord
    plan: Plan
    run: RunRecord
    node: Node
    rec: TaskRecord
    recs: dict[str, TaskRecord]  # the task's dependencies, by task id


class Links:
    def __init__(self, store: StateStore, clock: Clock, signer: LinkSigner, plans: Plans, scopes: Scopes,
                 outcomes: Outcomes, messenger: Messenger, public_url: str, safety_delay_seconds: int):
        self.store = store
        self.clock = clock
        self.signer = signer
        self.plans = plans
        self.scopes = scopes
        self.outcomes = outcomes
        self.messenger = messenger
        self.public_url = public_url
        # A callback/approval POST first enqueues a delayed self-check, so a crash after its write
        # still propagates; it must exceed the API's own timeout.
        self.safety_delay_seconds = safety_delay_seconds

    def resolve(self, token: str, kind: str, record_refusal: bool = True) -> Resolved:
        """The waiting task behind a link, or a LinkError with the status to answer. A refused use
        is recorded on the task unless ``record_refusal`` is False, as for every GET."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise LinkError(404, "unknown link")
        record = self.store.get_token(self.signer.hash(token))
        if record is None or record.kind != kind:
            # Not tied to any request (forged, tampered, or another kind's): logged, not stored.
            log.warning("refused an unknown %s link (hash %s)", kind, self.signer.hash(token)[:12])
            raise LinkError(404, "unknown link")
        refuse: Callable[[str, str, str, str | None], None] = self.refuse if record_refusal else _not_recorded
        if record.used_by:
            refuse(record.run_id, record.task_id, "a used or expired link", record.approver)
            raise LinkError(410, "this link has already been used")
        if record.expires_at is not None and self.clock.now().timestamp() >= record.expires_at:
            refuse(record.run_id, record.task_id, "a used or expired link", record.approver)
            raise LinkError(410, "this link has expired")
        plan = self.plans.get(record.plan_hash)
        node = plan.nodes[node_of(record.task_id)]
        run, recs = self.store.load(record.run_id, [record.task_id, *node.deps])
        if run is not None and run.plan_hash != plan.hash and node_of(record.task_id) in self.plans.get(
                run.plan_hash).nodes:
            # The run was migrated since the link was made (migration.py): it decides on the run's plan now.
            plan = self.plans.get(run.plan_hash)
            node = plan.nodes[node_of(record.task_id)]
            run, recs = self.store.load(record.run_id, [record.task_id, *node.deps])
        rec = recs.get(record.task_id)
        if run is not None and rec is not None and rec.redrive > run.redrives and run.status not in RUN_ENDED:
            raise LinkError(409, "this run is being migrated to another version: try again in a moment")
        # A link made before a redrive reset its task (a lower epoch) is void, as is any link of an ended run;
        # a wait a migration kept keeps the epoch of its links (links_epoch).
        made_at = rec.links_epoch if rec is not None and rec.links_epoch is not None else (rec.redrive if rec else 0)
        if run is None or rec is None or rec.status != TaskStatus.WAITING or rec.attempt != record.attempt \
                or record.epoch < made_at or run.status in RUN_ENDED:
            refuse(record.run_id, record.task_id, "a link to a request already decided", record.approver)
            raise LinkError(410, "this request is no longer waiting for an answer")
        return Resolved(record, plan, run, node, rec, recs)

    def was_used(self, token: str) -> bool:
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return False
        record = self.store.get_token(self.signer.hash(token))
        return record is not None and bool(record.used_by)

    def refuse(self, run_id: str, task_key: str, reason: str, approver: str | None) -> None:
        """Record a refused use of a link (the request itself is unchanged): one bounded record per
        task, a count and the last REFUSALS_KEPT, so no number of refused requests grows a run."""
        refusal = {"reason": reason, "approver": approver, "at": iso(self.clock.now())}
        try:
            self.store.record_refusal(run_id, refusal_key(task_key), refusal, REFUSALS_KEPT)
        except StoreError as exc:
            # The request is refused all the same; only its record is missing.
            log.warning("refused a link of %s/%s but could not record it: %s", run_id, task_key, exc)

    def url(self, run_id: str, rec: TaskRecord, base_url: str | None = None, token: str | None = None) -> str:
        """A waiting task's link (an approval's is one approver's: pass its ``token``)."""
        token = token or self.signer.token(run_id, rec.task_id, rec.attempt, rec.waiting_for or "", rec.nonce or "")
        path = "approvals" if rec.waiting_for == WaitingFor.APPROVAL else "callbacks"
        base = self.public_url or base_url or ""
        return f"{base.rstrip('/')}/{path}/{token}"

    def callback_info(self, token: str) -> dict[str, Any]:
        """What a callback link is waiting for (a GET: nothing is written)."""
        found = self.resolve(token, "callback", record_refusal=False)
        return {"run_id": found.run.run_id, "task_id": found.node.id, "status": "WAITING",
                "deadline": found.rec.wake_at}

    def submit_callback(self, token: str, body: Any) -> dict[str, Any]:
        found = self.resolve(token, "callback")
        plan, run, node, rec = found.plan, found.run, found.node, found.rec
        # A delayed self-check first: if we die after the write below, it propagates the task.
        self.self_check(plan, run, node, rec, delay=self.safety_delay_seconds)
        consume = TokenConsume(found.token.token_hash, uuid.uuid4().hex, int(self.clock.now().timestamp()))
        scope = self.scopes.scope_for(run, found.recs, node.deps)
        try:
            if (rec.approval or {}).get("gate"):
                self.outcomes.resolve_gate(plan, run, node, rec, body, consume=consume)
            else:
                event = (rec.approval or {}).get("event")
                result = TaskResult({"event": event, "data": body, "received_at": iso(self.clock.now())}
                                    if event else body)
                self.outcomes.succeed(plan, run, node, rec, result, scope=scope, consume=consume,
                                      from_status=TaskStatus.WAITING)
        except TokenUsed as exc:
            raise LinkError(410, "this link has already been used") from exc
        except ConditionFailed as exc:
            raise LinkError(410, "this request is no longer waiting for an answer") from exc
        self.self_check(plan, run, node, rec)  # the fast path
        return {"status": "accepted", "run_id": run.run_id, "task_id": node.id}

    def submit_named_callback(self, run_id: str, name: str, body: Any) -> dict[str, Any]:
        """Complete the callback a run waits for under a caller-chosen ``callback_id``, as its link would.
        The name is no secret (unlike a link's token): the route that calls this is the API's, authorized."""
        waiting = self._waiting_by("callback_id", run_id, name)
        if not waiting:
            raise LinkError(404, f"no callback named '{name:.128}' is waiting in run '{run_id:.64}'")
        if len(waiting) > 1:
            tasks = ", ".join(sorted(rec.task_id for rec in waiting))
            raise LinkError(409, f"{len(waiting)} callbacks are named '{name}' ({tasks}): post to their links")
        return self.submit_callback(self._token(run_id, waiting[0]), body)

    def send_event(self, run_id: str, name: str, body: Any) -> dict[str, Any]:
        """Deliver event ``name`` to every task of the run waiting for it (a ``wait`` with ``config.event``),
        each as its link would: once each, whatever the duplicates. An event no task waits for is refused
        (404): events are not kept for a wait that begins later."""
        waiting = self._waiting_by("event", run_id, name)
        if not waiting:
            raise LinkError(404, f"no task of run '{run_id:.64}' is waiting for event '{name:.128}'")
        delivered = []
        for rec in sorted(waiting, key=lambda r: r.task_id):
            try:
                delivered.append(self.submit_callback(self._token(run_id, rec), body)["task_id"])
            except LinkError as exc:
                if exc.status != 410:  # 410: it stopped waiting meanwhile (another delivery): not this one's
                    raise
        if not delivered:
            raise LinkError(410, f"the tasks waiting for event '{name}' are no longer waiting")
        return {"status": "accepted", "run_id": run_id, "event": name, "task_ids": delivered}

    def _waiting_by(self, field: str, run_id: str, name: str) -> list[TaskRecord]:
        if callback_id_error(name) or self.store.get_run(run_id) is None:
            return []
        return [rec for rec in self.store.list_tasks(run_id).values()
                if rec.status == TaskStatus.WAITING and rec.waiting_for == WaitingFor.CALLBACK
                and (rec.approval or {}).get(field) == name]

    def _token(self, run_id: str, rec: TaskRecord) -> str:
        return self.signer.token(run_id, rec.task_id, rec.attempt, rec.waiting_for or "", rec.nonce or "")

    def self_check(self, plan: Plan, run: RunRecord, node: Node, rec: TaskRecord, delay: int = 0) -> None:
        """The task's exec message: it carries on whatever a link's answer wrote (or tallies the votes)."""
        self.messenger.send_exec(run.run_id, plan.hash, node.id, rec.attempt, delay=delay, key=rec.task_id,
                                 epoch=rec.redrive)


def _not_recorded(run_id: str, task_key: str, reason: str, approver: str | None) -> None:
    """A refusal answered to a GET: reading never writes."""
