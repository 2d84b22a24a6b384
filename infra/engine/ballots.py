"""An approval's links and votes: one signed link per approver, one vote item per approver.

Each approver's link is an HMAC over (run, task, attempt, nonce, round, approver, deadline) and
only its hash is stored, with the approver and the deadline. A vote is its own item
(keys.vote_key), created in the same transaction that uses up the link (approvals.py).
"""

from __future__ import annotations

from typing import Any

from statemachine.plan import Plan
from statemachine.status import TaskStatus

from ..clock import parse_iso
from ..links import LinkSigner
from ..ports import RunRecord, StateStore, TaskRecord, TokenRecord
from .keys import vote_key


class Ballots:
    def __init__(self, store: StateStore, signer: LinkSigner):
        self.store = store
        self.signer = signer

    def links(self, run_id: str, rec: TaskRecord) -> list[tuple[str, str]]:
        """(approver, token) for the current round's approvers."""
        request = rec.approval or {}
        round_ = request.get("round", 0)
        return [(who, self.signer.token(run_id, rec.task_id, rec.attempt, "approval",
                                        f"{rec.nonce}|{round_}|{who}|{rec.wake_at or ''}"))
                for who in request.get("approvers") or []]

    def put_tokens(self, plan: Plan, run: RunRecord, rec: TaskRecord) -> None:
        """Store the hashes of the current round's links (a no-op for those stored before)."""
        expires = int(parse_iso(rec.wake_at).timestamp()) if rec.wake_at else None
        for who, token in self.links(run.run_id, rec):
            self.store.put_token(TokenRecord(self.signer.hash(token), run.run_id, rec.task_id, rec.attempt,
                                             "approval", plan.hash, expires, approver=who, epoch=rec.redrive))

    def votes(self, run_id: str, rec: TaskRecord) -> list[dict[str, Any]]:
        """The votes cast on the request, oldest first."""
        everyone = (rec.approval or {}).get("asked") or (rec.approval or {}).get("approvers") or []
        keys = [vote_key(rec.task_id, who) for who in everyone]
        _, recs = self.store.load(run_id, keys)
        found = [recs[k].output for k in keys if k in recs and recs[k].status == TaskStatus.COMPLETED]
        return sorted(found, key=lambda v: v["decided_at"])
