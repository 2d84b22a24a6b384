"""A run's history and the operator's audit log: typed entries, and the pure reading of a change.

Every journaled write of the engine stores, in the same write, the ``last_change`` of the item
(statemachine/state.py). The runs table's stream (or, locally, the in-memory store's feed) hands
over each write's old and new image; :func:`entries_of` turns one such change record into the
history entries it means, with no store and no clock. An entry's ``seq`` is the change record's
sequence number: delivering the same record twice yields the same entry, which the history store
appends once.

Images are in DynamoDB's attribute-value shape (``{"S": ...}``, ``{"N": ...}``), the one the stream
carries; the in-memory store builds the same with :func:`image`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Iterable

from .events import Cause, CauseKind
from .state import LastChange

RUN_ITEM = "RUN"  # the run's own item's sort key in the runs table; a task's is "T#<key>"
TASK_PREFIX = "T#"
SEQ_WIDTH = 40  # DynamoDB's stream sequence numbers have up to 40 digits
MAX_PAGE = 500  # the most entries one page of history or audit holds
# A cursor is the sort key of the last entry a page held: an ISO time, "#", and a sequence or request id.
_CURSOR = re.compile(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z#[A-Za-z0-9._:-]{1,100}$")


class EntryKind(StrEnum):
    RUN = "run"
    TASK = "task"


@dataclass(frozen=True)
class HistoryEntry:
    run_id: str
    at: str
    seq: str  # the change record's sequence number: the entry's identity
    kind: EntryKind
    item: str  # the task's item key; "" for the run itself
    status: str
    previous: str | None  # None: the item did not exist (a task then reads as PENDING)
    attempt: int
    reason: str
    cause: Cause | None

    @property
    def sort_key(self) -> str:
        # Sequence numbers are decimal strings of varying length: padded, they sort as numbers do.
        return f"{self.at}#{self.seq.zfill(SEQ_WIDTH)}"


class AuditAction(StrEnum):
    START = "start"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    REDRIVE = "redrive"
    REWIND = "rewind"
    DECIDE = "decide"  # an approval decided in someone's name (approve or reject)
    REGISTER = "register"  # a workflow registered
    DEPRECATE = "deprecate"  # a workflow version deprecated
    MIGRATE = "migrate"  # a run moved to another version of its workflow (not a dry run)


@dataclass(frozen=True)
class AuditEntry:
    at: str
    request_id: str  # the API request's id: the entry's identity
    action: AuditAction
    actor: str  # the IAM principal on AWS, the local user under `loopline dev`
    source_ip: str
    user_agent: str
    target: str  # a run id, or workflow id@version
    reason: str  # a cancel's reason, a decision and whose it is, ...
    outcome: int  # the HTTP status the request was answered with
    run_id: str = ""  # the run the action was about ("": none, or an entry written before it was kept)
    workflow_id: str = ""  # the workflow it was about: the run's, or the one registered, deprecated, started

    @property
    def sort_key(self) -> str:
        return f"{self.at}#{self.request_id}"


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries GET /audit asks for; every field left out matches all. ``actions``: any of
    these (empty: every action). ``since`` is inclusive and ``until`` exclusive (ISO times), so
    consecutive windows neither miss nor repeat an entry."""

    actor: str | None = None
    actions: frozenset[AuditAction] = frozenset()
    since: str | None = None
    until: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None

    @classmethod
    def of(cls, actor: str | None = None, action: AuditAction | Iterable[AuditAction] | None = None,
           since: str | None = None, until: str | None = None, workflow_id: str | None = None,
           run_id: str | None = None) -> AuditQuery:
        """From the History port's keywords (``action``: one action or several)."""
        actions = frozenset() if action is None else frozenset(
            (action,) if isinstance(action, AuditAction) else action)
        return cls(actor, actions, since, until, workflow_id, run_id)

    def matches(self, entry: AuditEntry) -> bool:
        """The query as one predicate: what every History adapter answers (tests/component/test_history_contract.py)."""
        return ((self.actor is None or entry.actor == self.actor)
                and (not self.actions or entry.action in self.actions)
                and (self.since is None or entry.sort_key >= self.since)
                and (self.until is None or entry.sort_key < self.until)
                and (self.workflow_id is None or entry.workflow_id == self.workflow_id)
                and (self.run_id is None or entry.run_id == self.run_id))


@dataclass(frozen=True)
class Retention:
    """How long a finished run and its history are kept (template.yaml's RetentionDays); 0: for ever."""

    days: float = 30

    def expires(self, moment: datetime) -> int | None:
        """The TTL (epoch seconds) of something that ended, or was recorded, at ``moment``."""
        return int((moment + timedelta(days=self.days)).timestamp()) if self.days > 0 else None

    def of_workflow(self, seconds: float | None) -> Retention:
        """A run's retention: its workflow's ``retention_policy`` (Plan.retention, seconds) when it has one,
        else this one (the deployment's)."""
        return Retention(seconds / 86_400) if seconds else self


def valid_cursor(cursor: str) -> bool:
    return bool(_CURSOR.match(cursor))


def entries_of(change: dict[str, Any]) -> list[HistoryEntry]:
    """The history entries of one change record (a stream record's ``dynamodb`` part: ``Keys``,
    ``OldImage``, ``NewImage``, ``SequenceNumber``). A write that set no new ``last_change``
    (a dependency counter, a sink count, a link refusal, an item's expiry) means no entry."""
    new, old = change.get("NewImage"), change.get("OldImage")
    if not new:
        return []  # removed (a TTL expiry): the history outlives it, nothing to add
    note = note_of(new)
    if note is None or (old and note_of(old) == note and text_of(old, "status") == text_of(new, "status")):
        return []
    keys = change.get("Keys") or new
    run_id, sort_key = text_of(keys, "pk"), text_of(keys, "sk")
    if sort_key == RUN_ITEM:
        kind, item = EntryKind.RUN, ""
    elif sort_key.startswith(TASK_PREFIX):
        kind, item = EntryKind.TASK, sort_key[len(TASK_PREFIX):]
    else:
        return []
    cause = Cause(CauseKind(note["cause_kind"]), note["cause_name"], note["cause_subject"]) \
        if note["cause_kind"] else None
    return [HistoryEntry(run_id=run_id, at=note["at"], seq=str(change["SequenceNumber"]), kind=kind, item=item,
                         status=text_of(new, "status") or "PENDING",
                         previous=(text_of(old, "status") or "PENDING") if old else None,
                         attempt=int((new.get("attempt") or {}).get("N", 0)), reason=note["reason"], cause=cause)]


def image(run_id: str, item: str, status: str, attempt: int, last_change: LastChange | None,
          texts: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The attributes of an item that :func:`entries_of` (and ``statemachine.metrics``) read, in the
    stream's shape (``item``: a task's key, or "" for the run; ``texts``: string attributes such as
    ``workflow_id`` or ``ended_at``, a None one left out as DynamoDB leaves it out)."""
    found: dict[str, Any] = {"pk": {"S": run_id}, "sk": {"S": TASK_PREFIX + item if item else RUN_ITEM},
                             "status": {"S": status}}
    found.update({name: {"S": value} for name, value in (texts or {}).items() if value is not None})
    if item:
        found["attempt"] = {"N": str(attempt)}
    if last_change is not None:
        found["last_change"] = {"S": json.dumps(last_change, separators=(",", ":"), sort_keys=True)}
    return found


def encode_entry(entry: HistoryEntry) -> dict[str, Any]:
    """An entry as the API shows it (and `loopline history --json` prints it)."""
    cause = {"kind": entry.cause.kind.value, "name": entry.cause.name, "subject": entry.cause.subject} \
        if entry.cause else None
    return {"at": entry.at, "seq": entry.seq, "kind": entry.kind.value, "item": entry.item, "status": entry.status,
            "previous": entry.previous, "attempt": entry.attempt, "reason": entry.reason, "cause": cause}


def decode_entry(run_id: str, data: dict[str, Any]) -> HistoryEntry:
    cause = data.get("cause")
    return HistoryEntry(run_id=run_id, at=data["at"], seq=data["seq"], kind=EntryKind(data["kind"]),
                        item=data["item"], status=data["status"], previous=data.get("previous"),
                        attempt=int(data["attempt"]), reason=data["reason"],
                        cause=Cause(CauseKind(cause["kind"]), cause["name"], cause["subject"]) if cause else None)


def encode_action(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at, "request_id": entry.request_id, "action": entry.action.value, "actor": entry.actor,
            "source_ip": entry.source_ip, "user_agent": entry.user_agent, "target": entry.target,
            "reason": entry.reason, "outcome": entry.outcome, "run_id": entry.run_id,
            "workflow_id": entry.workflow_id}


def decode_action(data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(at=data["at"], request_id=data["request_id"], action=AuditAction(data["action"]),
                      actor=data["actor"], source_ip=data["source_ip"], user_agent=data["user_agent"],
                      target=data["target"], reason=data["reason"], outcome=int(data["outcome"]),
                      run_id=str(data.get("run_id") or ""), workflow_id=str(data.get("workflow_id") or ""))


@dataclass(frozen=True)
class RunSeen:
    """A run's own item as a change left it: its workflow and its plan (which a migration changes)."""

    run_id: str
    workflow_id: str
    plan_hash: str


def run_seen(change: dict[str, Any]) -> RunSeen | None:
    """The run whose own item this change wrote, with its workflow and plan as the write left them, else None.
    The history consumer keeps them, so labelling the run's tasks and finding its retention read neither
    the run back nor, after a migration moved it onto another version, the old plan (infra/task_context.py)."""
    new = change.get("NewImage")
    keys = change.get("Keys") or new or {}
    if text_of(keys, "sk") != RUN_ITEM or not new:
        return None
    run_id, workflow_id, plan_hash = text_of(keys, "pk"), text_of(new, "workflow_id"), text_of(new, "plan_hash")
    return RunSeen(run_id, workflow_id, plan_hash) if run_id and workflow_id and plan_hash else None


def text_of(attrs: dict[str, Any] | None, name: str) -> str:
    value = (attrs or {}).get(name) or {}
    return str(value.get("S", "")) if isinstance(value, dict) else ""


def note_of(attrs: dict[str, Any]) -> LastChange | None:
    raw = text_of(attrs, "last_change")
    if not raw:
        return None
    data = json.loads(raw)
    note = LastChange(reason=str(data.get("reason", "")), at=str(data.get("at", "")),
                      cause_kind=str(data.get("cause_kind", "")), cause_name=str(data.get("cause_name", "")),
                      cause_subject=str(data.get("cause_subject", "")))
    if data.get("circuit"):
        note["circuit"] = str(data["circuit"])
    if data.get("migrated"):
        note["migrated"] = str(data["migrated"])
    return note
