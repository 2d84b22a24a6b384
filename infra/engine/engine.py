"""The engine: a dispatcher from each message kind (and each API action) to the collaborator that owns it.

Every message is safe to deliver more than once and to re-deliver after a crash
at any point of its handling: each step is a conditional write that either
applies or reveals the state a previous delivery left, from which the handler
carries on (see docs/durability.md). The message is deleted only after all of
its steps, so a crash between "write state" and "enqueue next" is healed by the
redelivery of the message that caused it.

The collaborators each receive the ports and the other collaborators they use, and are
built here in an order in which each one's collaborators exist already; the three calls
that go back up that order are connected at the end (protocols.py says why they exist).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, cast

from statemachine.events import Cause, CauseKind, cause_of
from statemachine.history import Retention
from statemachine.limits import DeploymentLimits
from statemachine.messages import (
    BranchTimeout,
    ChildDone,
    Exec,
    Message,
    Migrate,
    Notify,
    ParentRef,
    Redrive,
    Remind,
    Rewind,
    RunTimeout,
    Start,
    TimerFired,
    decode,
)
from statemachine.plan import Plan

from ..clock import iso
from ..links import LinkSigner
from ..listing import RunQueries
from ..ports import Clock, CodeDispatch, StateStore, StoreError, Timers, WorkQueue
from ..sandbox.settings import SandboxSettings
from ..tasks.registry import TaskTypes
from .approvals import Approvals
from .attempts import Attempts, Busy
from .ballots import Ballots
from .blocks import Blocks
from .carry_on import CarryOn
from .children import Children
from .circuits import Circuits
from .code_tasks import CodeTasks
from .dead_letters import DeadLetters
from .halting import Halting
from .journal import Journal, LoggedTransitions, TransitionSink
from .keys import iteration_key, iteration_of
from .links import Links
from .loops import Loops
from .messenger import Messenger
from .migration import Migrating
from .outcomes import Outcomes
from .pausing import Pausing
from .plans import Plans, Registration
from .propagate import Propagation
from .reading import Scopes
from .recall import RecallingStore
from .redrive import Redriving
from .rewind import Rewinding
from .run_end import RunEnd
from .run_listing import RunListing
from .run_start import RunStart
from .views import Views
from .waits import Waits

__all__ = ["Busy", "Engine", "EngineSettings"]
log = logging.getLogger(__name__)


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
    # Days a finished run (and its history) is kept before DynamoDB's TTL may delete it; 0: for ever.
    retention_days: int = 30
    # Tasks a worker invocation runs after its message's, each made ready by the one before, without
    # a queue round-trip (carry_on.py); 0: every ready task goes through the queue.
    carry_steps: int = 100
    # Whom and with which Python task code runs (LOOPLINE_TASK_USER, ...): also how a graph's functions are
    # resolved when it is created (infra/graph_functions.py).
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)

    @property
    def retention(self) -> Retention:
        return Retention(self.retention_days)

    @property
    def limits(self) -> DeploymentLimits:
        """What this deployment lets a workflow ask for, as the compiler and admission check it."""
        return DeploymentLimits(self.custom_modules)


class Engine:
    def __init__(
        self,
        store: StateStore,
        queue: WorkQueue,
        timers: Timers,
        signer: LinkSigner,
        clock: Clock,
        settings: EngineSettings | None = None,
        *,
        task_types: TaskTypes,
        queries: RunQueries,
        rng: random.Random | None = None,
        dispatch: CodeDispatch | None = None,
        transitions: TransitionSink | None = None,
    ):
        """``task_types``: how each task type runs, with the deployment's settings (the wiring builds them
        from the environment once); ``queries``: the run listing (infra/listing.py); ``transitions``: where
        the record of each transition goes (journal.py; by default a debug log)."""
        settings = settings or EngineSettings()
        rng = rng or random.SystemRandom()
        self.store = store
        # Every collaborator reads and writes through it: a carried-on task loads from what its
        # invocation saw (recall.py); outside a worker invocation it only passes calls on.
        self.recall = RecallingStore(store, clock)
        store = cast(StateStore, self.recall)
        self.queue = queue
        self.signer = signer
        self.clock = clock  # the API stamps its audit entries by the engine's clock (a movable one locally)
        self.settings = settings
        self.plans = Plans(store)
        self.journal = journal = Journal(clock, transitions or LoggedTransitions())
        self.messenger = messenger = Messenger(queue, timers)
        self.scopes = scopes = Scopes(store, clock, settings.env)
        self.outcomes = outcomes = Outcomes(store, clock, rng, scopes, messenger, journal)
        self.blocks = blocks = Blocks(store, outcomes, messenger, clock, self.plans)
        self.run_end = run_end = RunEnd(store, clock, messenger, scopes, journal, settings.retention)
        self.propagation = propagation = Propagation(store, clock, messenger, outcomes, blocks, run_end)
        self.loops = loops = Loops(store, clock, messenger, scopes, outcomes, propagation)
        self.halting = halting = Halting(store, self.plans, outcomes, journal)
        self.run_start = run_start = RunStart(store, clock, self.plans, messenger, run_end, halting, journal)
        self.children = children = Children(store, clock, self.plans, messenger, scopes, outcomes, propagation,
                                            run_start)
        self.ballots = ballots = Ballots(store, signer)
        self.links = links = Links(store, clock, signer, self.plans, scopes, outcomes, messenger, settings.public_url,
                                   settings.safety_delay_seconds)
        self.views = views = Views(store, clock, self.plans, ballots, links)
        self.approvals = approvals = Approvals(store, clock, self.plans, messenger, ballots, links, outcomes, views,
                                               journal, task_types)
        self.waits = waits = Waits(store, clock, signer, self.plans, messenger, outcomes, propagation, ballots,
                                   approvals, loops, children, halting)
        self.pausing = Pausing(store, self.plans, messenger, outcomes, waits, run_end, journal)
        self.redriving = Redriving(store, clock, self.plans, messenger, run_start, run_end, propagation,
                                   journal)
        self.migrating = Migrating(store, clock, self.plans, scopes, messenger, run_start, run_end, propagation, waits,
                                   journal, queries)
        self.rewinding = Rewinding(store, clock, self.plans, messenger, self.redriving, run_end, journal,
                                   self.pausing, halting)
        code = CodeTasks(dispatch, timers, settings.custom_modules) if dispatch is not None else None
        self.attempts = Attempts(clock, rng, settings.lease_seconds, self.plans, scopes, messenger, outcomes,
                                 propagation, waits, blocks, loops, children, code, task_types, self.recall,
                                 Circuits(store, clock, journal))
        self.carry_on = CarryOn(self.attempts, messenger, journal, settings.carry_steps)
        self.dead_letters = DeadLetters(store, clock, self.plans, outcomes, propagation, journal,
                                        settings.retention)
        self.listing = RunListing(store, queries, self.plans)
        # The calls back up the order (protocols.py).
        outcomes.propagation = propagation
        outcomes.children = halting
        propagation.loops = loops

    # ------------------------------------------------------------ messages

    def handle(self, message: dict[str, Any], time_left: Callable[[], float] | None = None) -> None:
        """Process one work-queue message. Raises Busy to have it redelivered later, ValueError for a
        message that is none of ours. ``time_left``: the seconds the handling process has left (a
        Lambda's remaining time), when it is bounded."""
        msg = decode(message)
        # What it makes ready runs next, here (carry_on.py). Should this raise, what it made ready is
        # dropped with it: the message comes back, and its redelivery makes the same tasks ready again.
        with self.recall.recalling(self._own_items(msg)):
            with self.messenger.carrying() as ready, self.journal.caused_by(cause_of(msg)):
                self._dispatch(msg, time_left)
            self.carry_on.run(ready, time_left)

    @contextmanager
    def batch(self, messages: list[Any]) -> Iterator[None]:
        """A delivered batch of work-queue messages (decoded JSON objects), handled one by one inside
        this block: where two or more are exec messages of one run, the items they will load are read
        once, together, up front (recall.py: ``batch``). Nothing else changes: each is handled by
        ``handle`` as alone, and a message that does not decode is left to its own handling."""
        wanted: dict[str, dict[str, None]] = {}
        execs: dict[str, int] = {}
        for raw in messages:
            try:
                msg = decode(raw)
                if not isinstance(msg, Exec):
                    continue
                plan = self.plans.get(msg.plan)
                node = plan.nodes[msg.task]
            except (ValueError, LookupError):
                continue
            execs[msg.run] = execs.get(msg.run, 0) + 1
            keys = self.scopes.keys_for(plan, node, msg.item, self.scopes.visible_tasks(plan, node))
            wanted.setdefault(msg.run, {}).update(dict.fromkeys(keys))
        reads = {run: list(keys)[:99] for run, keys in wanted.items() if execs[run] > 1}  # one request each
        try:
            images = self.recall.read_batch(reads)
        except StoreError:
            log.warning("the batch's items could not be read together; each message reads its own", exc_info=True)
            images = {}
        with self.recall.batch(images):
            yield

    def _own_items(self, msg: Message) -> list[tuple[str, str]]:
        """The items a message names as its own (its task's, and a body task's iteration)."""
        if not isinstance(msg, Exec):
            return []
        where = iteration_of(msg.item)
        return [(msg.run, msg.item), *([(msg.run, iteration_key(*where))] if where else [])]

    def _dispatch(self, msg: Message, time_left: Callable[[], float] | None) -> None:
        if isinstance(msg, Exec):
            self.attempts.on_exec(msg, time_left)
        elif isinstance(msg, Start):
            self.run_start.on_start(msg)
        elif isinstance(msg, TimerFired):
            self.waits.on_timer(msg)
        elif isinstance(msg, RunTimeout):
            self.run_start.on_run_timeout(msg)
        elif isinstance(msg, ChildDone):
            self.children.on_child_done(msg)
        elif isinstance(msg, Notify):
            self.approvals.on_notify(msg)
        elif isinstance(msg, Remind):
            self.approvals.on_remind(msg)
        elif isinstance(msg, Redrive):
            self.redriving.on_redrive(msg)
        elif isinstance(msg, BranchTimeout):
            self.blocks.on_branch_timeout(msg)
        elif isinstance(msg, Migrate):
            self.migrating.on_migrate(msg)
        elif isinstance(msg, Rewind):
            self.rewinding.on_rewind(msg)

    def accept_result(self, body: str, time_left: Callable[[], float] | None = None) -> str:
        """A code task's result from the result queue (attempts.py); what it makes ready runs next, as
        for :meth:`handle`."""
        with self.recall.recalling():
            with self.messenger.carrying() as ready, self.journal.caused_by(Cause(CauseKind.RESULT, "task result")):
                outcome = self.attempts.accept_result(body)
            self.carry_on.run(ready, time_left)
        return outcome

    def dead_letter(self, message: dict[str, Any], receives: int) -> str:
        with self.journal.caused_by(Cause(CauseKind.DEAD_LETTER, str(message.get("k") or "task result"))):
            return self.dead_letters.dead_letter(message, receives)

    # ------------------------------------------------------------ workflows and runs (the API's actions)

    def plan(self, plan_hash: str) -> Plan:
        return self.plans.get(plan_hash)

    def register_workflow(self, plan: Plan, allow_breaking: bool = False) -> Registration:
        """Raises VersionTaken or BreakingChange (plans.py)."""
        return self.plans.register(plan, iso(self.clock.now()), allow_breaking)

    def find_workflow(self, ref: str) -> Plan | None:
        return self.plans.find(ref)

    def start_run(self, plan: Plan, inputs: dict[str, Any] | None = None, run_id: str | None = None,
                  parent: ParentRef | None = None) -> str:
        """Raises InputError on bad input."""
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "start", plan.workflow_id)):
            return self.run_start.start_run(plan, inputs, run_id, parent)

    def describe_run(self, run_id: str, base_url: str | None = None) -> dict[str, Any] | None:
        return self.views.describe_run(run_id, base_url)

    def cancel_run(self, run_id: str, reason: str | None = None) -> dict[str, Any] | None:
        """``reason``: the operator's, kept in the run's error and its history."""
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "cancel", run_id)):
            return self.halting.cancel_run(run_id, reason)

    def pause_run(self, run_id: str) -> dict[str, Any] | None:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "pause", run_id)):
            return self.pausing.pause_run(run_id)

    def resume_run(self, run_id: str) -> dict[str, Any] | None:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "resume", run_id)):
            return self.pausing.resume_run(run_id)

    def redrive_run(self, run_id: str) -> dict[str, Any] | None:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "redrive", run_id)):
            return self.redriving.redrive_run(run_id)

    def migrate_run(self, run_id: str, to_ref: str, dry_run: bool = False, reason: str = "") -> dict[str, Any] | None:
        """Raises UnknownVersion (migration.py)."""
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "migrate", run_id)):
            return self.migrating.migrate_run(run_id, to_ref, dry_run, reason)

    def migrate_version(self, workflow_id: str, version: str, to_ref: str, dry_run: bool = False,
                        reason: str = "") -> list[dict[str, Any]]:
        """Every run of ``workflow_id@version`` not ended. Raises UnknownVersion (migration.py)."""
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "migrate", f"{workflow_id}@{version}")):
            return self.migrating.migrate_version(workflow_id, version, to_ref, dry_run, reason)
    def rewind_run(self, run_id: str, task_id: str, by: str = "", reason: str = "",
                   compensate: bool = False, iteration: int | None = None) -> dict[str, Any] | None:
        """Reopen a run (ended or moving) from just before ``task_id`` (rewind.py); ``by``, ``reason``: for its history;
        ``compensate``: the discarded tasks' compensations run first; ``iteration``: for a task of a loop's body,
        the iteration it reopens (None: the last that ran; loop_rewind.py)."""
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "rewind", run_id)):
            return self.rewinding.rewind_run(run_id, task_id, by, reason, compensate, iteration)

    # ------------------------------------------------------------ links and approvals

    def decide(self, token: str, decision: Any, comments: Any = None, approver: Any = None,
               data: Any = None) -> dict[str, Any]:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "decide", str(decision))):
            return self.approvals.decide(token, decision, comments, approver, data)

    def decide_for(self, run_id: str, task_id: str, decision: Any, comments: Any = None,
                   approver: str | None = None) -> dict[str, Any]:
        return self.approvals.decide_for(run_id, task_id, decision, comments, approver)

    def pending_approvals(self, run_id: str | None = None, approver: str | None = None,
                          base_url: str | None = None) -> list[dict[str, Any]]:
        return self.views.pending_approvals(run_id, approver, base_url)

    def approval_info(self, token: str) -> dict[str, Any]:
        return self.approvals.approval_info(token)

    def callback_info(self, token: str) -> dict[str, Any]:
        return self.links.callback_info(token)

    def submit_callback(self, token: str, body: Any) -> dict[str, Any]:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "callback")):
            return self.links.submit_callback(token, body)

    def submit_named_callback(self, run_id: str, name: str, body: Any) -> dict[str, Any]:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "callback", name)):
            return self.links.submit_named_callback(run_id, name, body)

    def send_event(self, run_id: str, name: str, body: Any) -> dict[str, Any]:
        with self.journal.caused_by(Cause(CauseKind.REQUEST, "event", name)):
            return self.links.send_event(run_id, name, body)

    def link_was_used(self, token: str) -> bool:
        return self.links.was_used(token)
