"""Ports: the small interfaces the engine drives. Each has an AWS and an in-memory adapter.

The store is domain-shaped rather than a generic key-value API on purpose:
every method is one conditional write (or one read), so the AWS adapter maps
each call onto exactly one DynamoDB request and the cost of a transition can be
read off the engine's code.

A conditional write has one of three outcomes, and every store reports them the
same way (tests/component/test_store_outcomes.py runs each store through them):

* applied: the write happened (``True``, ``Written(True, record)``, or the record);
* lost the race: the item was in another state, another writer got there first and
  nothing was written: ``False``, ``Written(False, the stored record)``, the stored
  record where the write is idempotent (``begin_end``, ``record_sink_done``), or
  ``LostRace(current)`` raised by ``change_task``;
* gone: the run a write is about has no item (never created, or expired), so
  nothing was written: ``RunGone`` raised, never a silent ``None``/``False``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from statemachine.circuit import Circuit
from statemachine.history import AuditAction, AuditEntry, HistoryEntry, Retention, RunSeen
from statemachine.metrics import MetricPoint
from statemachine.state import LastChange
from statemachine.versions import WorkflowVersion

# The records live in records.py; imported here too, where every adapter has always found them.
from .records import RunRecord, TaskChange, TaskRecord, TokenRecord, refusal_record  # noqa: F401

if TYPE_CHECKING:
    from .dispatch.jobs import CodeJob


class Clock(Protocol):
    def now(self) -> datetime:  # timezone-aware UTC
        ...


# ---------------------------------------------------------------- records (infra/records.py)

class ConditionFailed(Exception):
    """A conditional write was refused: nothing was written. ``current`` is the task's state when the
    condition was on a task (LostRace), None when there is none to report (RunGone)."""

    def __init__(self, current: TaskRecord | None, message: str = "condition failed"):
        super().__init__(message)
        self.current = current


class LostRace(ConditionFailed):
    """The task was not in the state a change expected: another writer got there first. ``current`` is
    the state that won (a missing item reads as PENDING: ``TaskRecord(task_id)``, never None)."""

    current: TaskRecord

    def __init__(self, current: TaskRecord):
        super().__init__(current, f"task {current.task_id!r} is {current.status} (attempt {current.attempt})")


class RunGone(ConditionFailed):
    """The run a write is about has no item: never created, or expired. Nothing was written."""

    def __init__(self, run_id: str):
        super().__init__(None, f"run {run_id!r} not found")
        self.run_id = run_id


R = TypeVar("R")


class Written(NamedTuple, Generic[R]):
    """A write that may lose a race: ``applied`` False means another writer got there first, and
    ``record`` is then the state that won (else the state written). A tuple, so it unpacks."""

    applied: bool
    record: R


class StoreError(Exception):
    """The store could not be reached or refused the request (not a condition failure)."""


class HistoryUnfinished(StoreError):
    """``History.append_all`` failed part way: the first ``len(new)`` entries are kept for certain
    (``new``: which of them were not there before), the others may or may not be."""

    def __init__(self, message: str, new: list[bool]):
        super().__init__(message)
        self.new = new


class StateStore(Protocol):
    # plans
    def put_plan(self, plan_hash: str, plan_json: str) -> bool: ...  # False: there (content-addressed: the same)
    def get_plan(self, plan_hash: str) -> str | None: ...

    # the registry: workflow id + version -> plan hash, each version written once (statemachine/versions.py)
    def register_workflow(self, entry: WorkflowVersion) -> Written[WorkflowVersion]: ...  # (False, stored): taken
    def get_workflow(self, workflow_id: str, version: str) -> WorkflowVersion | None: ...
    def workflow_versions(self, workflow_id: str) -> Iterator[WorkflowVersion]: ...  # newest first, read lazily
    def list_workflows(self) -> list[WorkflowVersion]: ...  # by id, then by version, oldest first
    def deprecate_workflow(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion | None:
        ...  # the first deprecation stands; None: no such version

    # runs
    def create_run(self, run: RunRecord) -> Written[RunRecord]: ...  # (False, the stored run) if it existed
    def get_run(self, run_id: str) -> RunRecord | None: ...
    def load(self, run_id: str, task_ids: list[str]) -> tuple[RunRecord | None, dict[str, TaskRecord]]: ...
    def list_tasks(self, run_id: str) -> dict[str, TaskRecord]: ...
    def read_span(self, run_id: str, task_ids: list[str]) -> dict[str, TaskRecord]:
        """The items of ``task_ids`` (one with no item left out), read after every write that completed before
        the call (a strongly consistent read): on DynamoDB one Query (a page per MB) of every item whose key lies
        between the first and the last of them, so a caller asks only for ids with few items between them
        (statemachine/joins.py)."""
        ...
    def ended_iterations(self, run_id: str, loop_id: str) -> int:
        """How many iteration items of ``loop_id`` have ended (``loop_steps.ended_iteration``), read after
        every write that completed before the call (a strongly consistent read)."""
        ...
    # Each of these raises RunGone if the run has no item.
    # ``note``: why, stored with the change (RunRecord.last_change); None leaves the stored one.
    def finish_run(self, run_id: str, status: str, outputs: Any, error: dict | None, ended_at: str,
                   note: LastChange | None = None, expires: int | None = None) -> bool:
        """End a RUNNING or COMPENSATING run. False: it had ended (or was PAUSED) and is left as it is.
        ``expires``: when the finished run may be deleted (epoch seconds, RunRecord.ttl)."""
        ...

    def begin_end(self, run_id: str, comps: list[list[str]], status: str,
                  note: LastChange | None = None) -> RunRecord:
        """Fix the end steps once, on a RUNNING run. Returns the stored run: as written, or as it was
        when they were fixed before (or the run is no longer RUNNING)."""
        ...

    def set_run_status(self, run_id: str, status: str, expected: str,
                       note: LastChange | None = None) -> bool:
        """False: not ``expected``, or a PAUSED run a rewind holds (RunRecord.rewinding): it is left as it is."""
        ...

    def halt_run(self, run_id: str, reason_id: str, error: dict,
                 note: LastChange | None = None) -> RunRecord: ...  # always applies
    def record_sink_done(self, run_id: str, task_id: str, epoch: int | None = None) -> RunRecord:
        """Count the sink ``task_id`` done once. Returns the stored run (a repeat counts nothing). ``epoch``: the
        stamp of the sink's item that ended; nothing is counted if the sink is fenced (RunRecord.fenced) and it
        is below the run's epoch."""
        ...

    def record_failure(self, run_id: str, task_id: str, error: dict, epoch: int | None = None) -> None:
        """Idempotent; ``epoch`` as for record_sink_done (a fenced failure from before a rewind is not recorded)."""
        ...

    # redrive (infra/engine/redrive.py)
    def reset_task(self, run_id: str, task_id: str, epoch: int, keep: dict[str, Any] | None = None,
                   rewinding: bool = False) -> bool:
        """Replace the item by a PENDING one stamped ``epoch`` (plus ``keep``'s fields; a ``status`` there is
        the item's instead: a rewind into a loop's body writes a kept item again, stamped), only while the
        run is FAILED with ``epoch - 1`` redrives, no rewind under way, and the item's stamp is below
        ``epoch``; ``rewinding``: only while the run's rewind ``epoch`` is under way (whatever the item's
        stamp). True if written, False if a condition failed; RunGone if the run has no item."""
        ...

    def reopen_run(self, run_id: str, epoch: int, sinks_done: list[str], sinks_remaining: int,
                   now: str, note: LastChange | None = None, rewinding: bool = False) -> Written[RunRecord]:
        """FAILED with ``epoch - 1`` redrives, no compensation and no rewind under way (``rewinding``:
        instead, the run's rewind ``epoch`` under way) -> RUNNING with ``epoch`` redrives, the failure,
        end steps, outputs, expiry and rewind cleared, the sink counter set. Returns (applied, the stored
        run); RunGone if the run has no item."""
        ...

    # rewind (infra/engine/rewind.py)
    def begin_rewind(self, run_id: str, epoch: int, task_id: str, comps: list[list[str]] | None = None,
                     note: LastChange | None = None, moving: bool = False) -> Written[RunRecord]:
        """Mark rewind ``epoch`` to ``task_id`` under way: only on an ended run (COMPLETED, FAILED,
        CANCELLED) with ``epoch - 1`` redrives and no rewind under way. With ``comps`` (compensation
        steps to run first) the run also becomes COMPENSATING with them as its end steps. ``moving``:
        instead, only on a RUNNING or PAUSED run with ``epoch - 1`` redrives, no rewind under way, not
        stopping (halt) and no end steps fixed; it becomes PAUSED. Returns (applied, the stored run);
        RunGone if the run has no item."""
        ...

    def reopen_moving(self, run_id: str, epoch: int, gone: list[str], sinks: int, fenced: list[str],
                      now: str, note: LastChange | None = None) -> Written[RunRecord]:
        """A moving run's rewind ``epoch`` ends: PAUSED with that rewind under way -> RUNNING with ``epoch``
        redrives; the discarded tasks ``gone`` taken out of its counted sinks and failures (the error cleared
        when no failure is left), the sink counter set to ``sinks`` (how many the plan has) less those counted,
        ``fenced`` as RunRecord.fenced, the rewind cleared; a cancel or timeout (halt) stays. Returns (applied,
        the stored run); RunGone if the run has no item."""
        ...

    # migration (infra/engine/migration.py)
    def migrate_task(self, run_id: str, record: TaskRecord, epoch: int, plan_hash: str,
                     expect: TaskRecord | None) -> bool:
        """Put ``record`` (stamped ``epoch`` by the caller), only while the run is PAUSED with ``epoch - 1``
        redrives on ``plan_hash``, the item's stamp is below ``epoch`` and it has ``expect``'s status,
        attempt and votes (``expect`` None: no item). True if written; RunGone if the run has no item."""
        ...

    def pause_to_migrate(self, run_id: str, epoch: int, plan_hash: str,
                         note: LastChange | None = None) -> Written[RunRecord]:
        """RUNNING on ``plan_hash`` with ``epoch - 1`` redrives -> PAUSED (a late copy of a migration's message
        cannot pause a run that has moved on). Returns (applied, the stored run); RunGone if it has no item."""
        ...

    def switch_plan(self, run_id: str, epoch: int, source: str, target: str, inputs: dict[str, Any],
                    variables: dict[str, Any], sinks_done: list[str], sinks_remaining: int,
                    note: LastChange | None = None) -> Written[RunRecord]:
        """PAUSED on ``source`` with ``epoch - 1`` redrives -> RUNNING on ``target`` with ``epoch``, the
        inputs, the variables and the sink counter set. Returns (applied, the stored run); RunGone if it has no item."""
        ...

    # tasks
    def change_task(
        self,
        run_id: str,
        task_id: str,
        change: TaskChange,
        exports: dict[str, Any] | None = None,
        consume: "TokenConsume | None" = None,
    ) -> TaskRecord:
        """Apply ``change`` atomically with the variable ``exports`` and the token
        consumption, if any; nothing is written if a condition fails. When several
        fail, the first of these is raised: LostRace (the task is not in the expected
        state), RunGone (exports to a run with no item), TokenUsed (the token is used,
        expired or missing), RequestClosed (the voted-on approval no longer waits)."""
        ...

    def resolve_edge(self, run_id: str, task_id: str, dep_id: str, outcome: str,
                     epoch: int | None = None) -> Written[TaskRecord]:
        """Count one finished dependency of ``task_id`` once. Returns (newly applied, task state). ``epoch``: the
        stamp of the dependency's item that ended; not counted when ``dep_id`` is fenced on the task's item
        (TaskRecord.fenced) and ``epoch`` is below the item's stamp (a result from before a rewind)."""
        ...

    def record_refusal(self, run_id: str, record_id: str, refusal: dict[str, Any], keep: int) -> TaskRecord:
        """Count one more refused use of a link on the item ``record_id`` and keep ``refusal`` among
        its last ``keep`` (the oldest dropped), in one conditional write, so concurrent refusals each
        count once and the item never grows: it reads COMPLETED, ``attempt`` = the count, ``output`` =
        ``{"count": n, "last": [refusal, ...]}`` oldest first. Returns the item as written."""
        ...

    # circuit breakers (statemachine/circuit.py): one record per name, shared by every run of every workflow
    def get_circuit(self, name: str) -> Circuit | None: ...  # read after every write that completed before
    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        """Store ``circuit`` as version ``circuit.version + 1``, only while the stored one is ``circuit.version``
        (0: none stored). Returns (True, as stored) or (False, the stored one), so of concurrent writers
        deciding on the same read exactly one applies, and the others decide again on what won."""
        ...

    # link tokens
    def put_token(self, token: TokenRecord) -> bool: ...  # False: present (maybe used), left as it is
    def get_token(self, token_hash: str) -> TokenRecord | None: ...
    def unused_tokens(self, kind: str) -> list[TokenRecord]:
        """Every unused link of a kind: an operator's listing, never used by a transition."""
        ...


@dataclass(frozen=True)
class TokenConsume:
    token_hash: str
    request_id: str
    now_epoch: int
    # A vote: the approval's own item (key, attempt) must still be WAITING, and its vote count
    # goes up by one in the same transaction (else RequestClosed, and nothing is written).
    vote_on: tuple[str, int] | None = None


class RequestClosed(Exception):
    """The approval a vote was for is no longer waiting (decided, timed out, cancelled)."""


class TokenUsed(Exception):
    """The link was already used, or has expired."""


class WorkQueue(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        """Send each at once, in as few requests as the queue allows. On an error some may have gone."""
        ...

    def read(self, body: str) -> dict[str, Any]:
        """A message from the body this queue sent (which may be a claim check on a large one)."""
        ...


class Payloads(Protocol):
    """Content-addressed blobs (the claim check for values above the item and message limits)."""

    def put(self, data: bytes) -> str: ...  # returns the reference (the content's SHA-256)
    def get(self, ref: str) -> bytes: ...


class CodeDispatch(Protocol):
    """Starts one attempt of workflow code outside the engine (the task-runner function on AWS). The
    outcome comes back later as a destination record on the result queue (infra/dispatch/jobs.py)."""

    # The seconds an attempt's lease covers beyond the code's own timeout: the longest a job may wait
    # to start (one not started by then never starts), plus the time its outcome takes to reach the
    # result queue. The watchdog takes the attempt over only after it, so no code runs twice.
    lease_margin: float

    def dispatch(self, job: CodeJob, valid_for: float) -> None:
        """Send ``job``; whatever it needs to fetch or put (a large request or reply) stays reachable
        for ``valid_for`` seconds. Raises StoreError if the job could not be handed over."""
        ...

    def uploaded_reply(self, token_hash: str, limit: int) -> bytes:
        """The reply a runner put for the attempt whose token hashes to ``token_hash`` (a reply too
        large to travel inline). LookupError if there is none, ValueError if over ``limit`` bytes."""
        ...


class Timers(Protocol):
    def schedule(self, name: str, at: datetime, message: dict[str, Any]) -> None:
        """Deliver ``message`` to the work queue at ``at`` (at least once). Idempotent by name."""
        ...


class Page(NamedTuple, Generic[R]):
    """One page of a listing, oldest first; ``cursor`` asks for the next (None: there is none)."""

    items: list[R]
    cursor: str | None


class Metrics(Protocol):
    """Where the history consumer's metric points (statemachine/metrics.py) go: CloudWatch EMF on
    AWS (infra/aws/emf_metrics.py), an in-process Prometheus registry locally (loopline/memory/prometheus.py)."""

    def emit(self, points: list[MetricPoint]) -> None: ...


@dataclass(frozen=True)
class TaskLabels:
    """What a task's metric points are labelled with: its run's workflow and its task type (a
    block's kind: loop, parallel, condition...); "" where it could not be found."""

    workflow: str = ""
    task_type: str = ""


class TaskContext(Protocol):
    """The history consumer's look-up of a task item's labels (infra/task_context.py): a task item
    carries neither, and the worker's writes are not made larger to carry them."""

    def of(self, run_id: str, task_key: str) -> TaskLabels:
        """A missing run or plan gives empty labels; a storage error (StoreError) is raised."""
        ...

    def retention(self, run_id: str) -> float | None:
        """The run's workflow's retention_policy (Plan.retention, seconds); None: it has none, or the run or
        its plan is not there (the deployment's retention applies). A storage error is raised."""
        ...

    def saw(self, run: RunSeen) -> None:
        """The run's own item, as a change in the stream showed it: kept, so that its tasks need no read of
        it, and so that a migration's move onto another plan replaces what was found on the old one."""
        ...


class History(Protocol):
    """A run's history (statemachine/history.py) and the operator's audit log, append-only. Entries
    expire with the deployment's retention (their TTL); nothing else ever removes one."""

    def append(self, entry: HistoryEntry, retention: Retention | None = None) -> bool:
        """Keep ``entry`` once: False when an entry of the same change record is there already. It expires
        with ``retention`` (its run's workflow's), else the deployment's."""
        ...

    def append_all(self, entries: Sequence[HistoryEntry],
                   retention: Mapping[str, Retention | None] | None = None) -> list[bool]:
        """Keep each of ``entries`` once, in as few requests as the store allows (a stream batch's
        entries: HistoryRecorder.record_all); for each, True when it was not there before. Each expires
        with its run's ``retention`` (by run id), else the deployment's. A failure part way raises
        HistoryUnfinished, saying which leading entries are kept for certain."""
        ...

    def of_run(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page[HistoryEntry]:
        """A run's entries in time order, from after ``cursor`` (a previous page's)."""
        ...

    def record_action(self, entry: AuditEntry) -> bool:
        """Keep an operator's action once (by its request id): False if it is there already."""
        ...

    def actions(self, actor: str | None = None, action: AuditAction | Iterable[AuditAction] | None = None,
                since: str | None = None, cursor: str | None = None, limit: int = 100, *, until: str | None = None,
                workflow_id: str | None = None, run_id: str | None = None) -> Page[AuditEntry]:
        """The audit log in time order after ``cursor``: the entries ``AuditQuery.of(actor, action, since,
        until, workflow_id, run_id)`` matches (``action``: one or any of several; ``since`` inclusive,
        ``until`` exclusive, ISO times)."""
        ...
