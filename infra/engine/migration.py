"""Migration: a running run moves to another version of its workflow (docs/versions.md). `POST /runs/{id}/migrate`,
`loopline migrate RUN --to id@version`.

What happens to each task is planned by statemachine/migration.py (keep, keep waiting, re-evaluate, add, drop,
or a refusal naming each task that would lose or repeat an effect). The API plans once to answer (a dry run
stops there), then queues ``{"k": "migrate", "run", "epoch": n, "from", "to"}`` (n = the run's epoch + 1: a
migration takes the next epoch, as a redrive does) and answers 202. The worker does the rest in steps, each safe
to repeat (a duplicate message, or a redelivery after a crash anywhere, carries on where the last one stopped):

1. **Pause**: RUNNING -> PAUSED, so that no task starts while the run moves (a ready task is parked; the
   migration starts it again under the new plan). The worker plans again on what it reads now; a refusal
   (something started meanwhile) resumes the run and stops there.
2. **Items**: each written once, conditionally: only while the run is PAUSED on the old plan at epoch n - 1,
   only if the item is still as the plan read it (status, attempt, votes) and not stamped n yet. A kept task's
   item is written again (under its new id for a rename) stamped n; a waiting one keeps the epoch of its links
   (``links_epoch``), so they go on deciding. A task to re-evaluate or added is a PENDING item stamped n. Every
   other item of the old flow is stamped n as it is. An item that moved meanwhile (an approval decided while
   the run was pausing) raises Busy: the message comes back, and its redelivery plans again.
3. **Switch**: PAUSED on the old plan at n - 1 -> RUNNING on the new plan at n, its variables completed with
   the new version's defaults, the sink counter set to the new version's sinks not kept.
4. **Restart**: a kept wait's timers and deadline are armed again on the new plan (stamped n), the edges from
   ended tasks into the tasks to run are applied (each counts once, however often replayed), tasks without
   dependencies are queued, and the run's timeout timer is set again. From there the run goes on as any run.

Messages from before (a timer, a late exec, a reminder) carry an epoch below n and are dropped as stale
(``keys.is_stale``); the links of a kept wait decide on the run's new plan (links.py). While the items are
being written, a link answers 409 (try again).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from statemachine.compat import compare
from statemachine.expressions import EvalContext, ExpressionError, Scope
from statemachine.inputs import InputError, prepare_inputs
from statemachine.messages import Migrate
from statemachine.migration import (
    Action,
    Blocker,
    MigrationPlan,
    MigrationRefused,
    Outcome,
    TaskState,
    migrated_to,
    plan_migration,
)
from statemachine.migration_decl import StateError, declared_for, migrated_variables, with_renames
from statemachine.plan import Plan
from statemachine.status import RunStatus, TaskStatus
from statemachine.versions import UnknownVersion

from ..listing import RunQueries, RunQuery
from ..ports import Clock, RunRecord, StateStore, TaskRecord
from .attempts import Busy
from .journal import Journal
from .messenger import Messenger
from .plans import Plans
from .propagate import Propagation
from .reading import Scopes
from .run_end import RunEnd
from .run_start import RunStart
from .waits import Waits

MOVABLE = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})


def run_refusal(run: RunRecord, target: Plan) -> str | None:
    """Why ``run`` as a whole cannot move to ``target``, or None."""
    if run.status not in MOVABLE:
        return f"it is {run.status}; only a RUNNING or PAUSED run can be migrated"
    if run.end_comps is not None:
        return "its end steps have begun (compensation, finally)"
    if run.halt:
        return "it is stopping (cancelled, or past its timeout)"
    if run.plan_hash == target.hash:
        return f"it runs {target.workflow_id}@{target.version} already"
    return None


def planned(run: RunRecord, old: Plan, new: Plan, recs: dict[str, TaskRecord], scope: Scope,
            ctx: EvalContext) -> Outcome:
    """What migrating ``run`` (its items ``recs``, ``scope`` what its expressions see) from ``old`` to ``new``
    does, or why it cannot: per task, and the run's variables on ``new`` (its ``migrations`` section's)."""
    def refused(task: str, status: str, why: str) -> MigrationRefused:
        return MigrationRefused(old.workflow_id, old.version, new.version, (Blocker(task, status, why),))
    why = run_refusal(run, new)
    if why:
        return refused("$run", run.status, why)
    spec = declared_for(new, old.version)
    try:
        inputs = prepare_inputs(new, run.inputs)  # the new version's defaults for what the run was not given
    except InputError as error:
        return refused("$inputs", "-", f"the run's input does not fit version {new.version}: {error}")
    try:
        variables = migrated_variables(spec, new, run.variables, scope, ctx)
    except (ExpressionError, StateError) as error:
        return refused("$migrations", "-", f"version {new.version}'s migration from {old.version} failed: {error}")
    states = {key: TaskState(rec.status, rec.waiting_for) for key, rec in recs.items()}
    outcome = plan_migration(old, new, with_renames(dict(compare(old, new).task_map), spec, old, new), states)
    if not isinstance(outcome, MigrationPlan):
        return outcome
    return replace(outcome, variables=variables, before=dict(run.variables), inputs=inputs)


def item_writes(plan: MigrationPlan, old: Plan, recs: dict[str, TaskRecord],
                epoch: int) -> dict[str, tuple[TaskRecord, TaskRecord | None]]:
    """Item key -> (the item to write, the item as the plan read it (None: none)), for a migration to ``epoch``."""
    writes: dict[str, tuple[TaskRecord, TaskRecord | None]] = {}
    for move in plan.moves:
        found = recs.get(move.task)
        if move.action is Action.KEEP:
            source = recs[move.renamed_from or move.task]
            writes[move.task] = (replace(source, task_id=move.task, redrive=epoch, parked=None, carried=None), found)
        elif move.action is Action.KEEP_WAITING:
            assert found is not None
            links = found.links_epoch if found.links_epoch is not None else found.redrive
            writes[move.task] = (replace(found, redrive=epoch, links_epoch=links, parked=None, carried=None), found)
        elif move.action in (Action.RE_EVALUATE, Action.ADD):
            writes[move.task] = (TaskRecord(move.task, redrive=epoch), found)
    # Every other item of the old flow (a drop, a renamed task's old id) is stamped as it is, so that a message
    # about it from before is stale and cannot start or advance it under the old plan.
    for node in old.nodes.values():
        if node.role == "flow" and node.loop_of is None and node.id not in writes:
            found = recs.get(node.id)
            writes[node.id] = (replace(found or TaskRecord(node.id), redrive=epoch, parked=None, carried=None), found)
    return writes


class Migrating:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, scopes: Scopes, messenger: Messenger,
                 run_start: RunStart, run_end: RunEnd, propagation: Propagation, waits: Waits, journal: Journal,
                 queries: RunQueries):
        self.store = store
        self.clock = clock
        self.scopes = scopes
        self.queries = queries
        self.plans = plans
        self.messenger = messenger
        self.run_start = run_start
        self.run_end = run_end
        self.propagation = propagation
        self.waits = waits
        self.journal = journal

    def migrate_run(self, run_id: str, to_ref: str, dry_run: bool = False, reason: str = "") -> dict[str, Any] | None:
        """Plan the migration of ``run_id`` to ``to_ref`` (``id@version``), and unless ``dry_run`` or refused,
        queue it (the worker does it). None: no such run. Raises UnknownVersion."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        entry = self.plans.version_of(to_ref)
        old = self.plans.get(run.plan_hash)
        if entry is None or entry.workflow_id != old.workflow_id:
            raise UnknownVersion(f"no workflow '{to_ref}'" if entry is None else
                                 f"'{to_ref}' is not a version of the run's workflow '{old.workflow_id}'")
        new = self.plans.get(entry.plan_hash)
        outcome = self._planned(run, old, new, self.store.list_tasks(run_id))  # once per request: an operator's
        body: dict[str, Any] = {"run_id": run_id, "status": run.status, "dry_run": dry_run,
                                "allowed": outcome.allowed, "report": outcome.to_json(), "lines": outcome.lines()}
        if not outcome.allowed or dry_run:
            return {**body, "changed": False}
        # The message is all this writes: asked twice before the worker gets to it, both carry the same epoch
        # and make one migration.
        epoch = run.redrives + 1
        self.messenger.send(Migrate(run_id, epoch, run.plan_hash, new.hash, reason,
                                    paused=run.status == RunStatus.PAUSED))
        return {**body, "changed": True, "epoch": epoch}

    def migrate_version(self, workflow_id: str, version: str, to_ref: str, dry_run: bool = False,
                        reason: str = "") -> list[dict[str, Any]]:
        """:meth:`migrate_run` for every run of ``workflow_id@version`` that has not ended, newest first (each
        one planned on its own: some may move while others are refused). Raises UnknownVersion."""
        entry = self.plans.version_of(f"{workflow_id}@{version}")
        if entry is None:
            raise UnknownVersion(f"no workflow '{workflow_id}@{version}'")
        answers = []
        for status in sorted(MOVABLE):
            query = RunQuery(status=status, workflow_id=workflow_id, limit=200)
            while True:  # an operator's action: every page of the workflow's moving runs
                page = self.queries.list_runs(query)
                for summary in page.runs:
                    run = self.store.get_run(summary.run_id)
                    if run is not None and run.plan_hash == entry.plan_hash:
                        answer = self.migrate_run(run.run_id, to_ref, dry_run, reason)
                        if answer is not None:
                            answers.append(answer)
                if not page.more or not page.runs:
                    break
                query = RunQuery(status=status, workflow_id=workflow_id, limit=200, after=page.runs[-1].position)
        return answers

    def on_migrate(self, msg: Migrate) -> None:
        run = self.store.get_run(msg.run)
        if run is None:
            return
        old, new = self.plans.get(msg.source), self.plans.get(msg.target)
        if run.redrives == msg.epoch - 1 and run.plan_hash == msg.source:
            run = self._move(run, old, new, msg)
        if run is None or run.redrives != msg.epoch or run.plan_hash != msg.target or run.status != RunStatus.RUNNING:
            return  # another epoch's message, refused, or this migration's run has moved on (ended, paused)
        self._restart(new, run, msg.epoch)

    def _move(self, run: RunRecord, old: Plan, new: Plan, msg: Migrate) -> RunRecord | None:
        """Steps 1 to 3; returns the run as it stands after them (None: it is gone)."""
        to = f"{new.workflow_id}@{new.version}"
        if run.status == RunStatus.RUNNING:
            # Conditional on the epoch and the plan: a copy of this message that read the run before another
            # finished the migration must not pause the run it left RUNNING on the new version.
            why = f"paused to migrate to {to}"
            paused, run = self.store.pause_to_migrate(run.run_id, msg.epoch, old.hash, note=self.journal.note(why))
            if paused:
                self.journal.run(run.run_id, RunStatus.PAUSED, RunStatus.RUNNING, why)
        if run.status != RunStatus.PAUSED or run.redrives != msg.epoch - 1:
            return run
        recs = self.store.list_tasks(run.run_id)
        outcome = self._planned(run, old, new, recs)
        if isinstance(outcome, MigrationRefused):
            # Something started since the request was accepted: the run goes on where it is, or stays
            # paused if an operator had paused it before (the pause was not this migration's to undo).
            why = f"migration to {to} refused: " + "; ".join(b.line() for b in outcome.blockers)
            status, note = RunStatus.PAUSED if msg.paused else RunStatus.RUNNING, self.journal.note(why)
            if msg.paused and run.last_change is not None and run.last_change["reason"] == note["reason"]:
                return None  # a redelivery: the refusal is recorded already
            if self.store.set_run_status(run.run_id, status, expected=RunStatus.PAUSED, note=note):
                self.journal.run(run.run_id, status, RunStatus.PAUSED, why)
            return None
        for key, (record, expect) in item_writes(outcome, old, recs, msg.epoch).items():
            note = self.journal.note(migrated_to(to))
            note["migrated"] = to  # no task started or ended in this write: the metrics count nothing for it
            if not self.store.migrate_task(run.run_id, replace(record, last_change=note), msg.epoch, old.hash,
                                           expect):
                _, now = self.store.load(run.run_id, [key])
                if key not in now or now[key].redrive < msg.epoch:
                    raise Busy(f"'{key}' moved while the run was being migrated: it is planned again")
        variables = outcome.variables if outcome.variables is not None else run.variables
        sinks_done = [s for s in new.sinks if s in outcome.ended]
        why = f"migrated from {old.workflow_id}@{old.version} to {to}" + (f": {msg.reason}" if msg.reason else "")
        switched, run_now = self.store.switch_plan(
            run.run_id, msg.epoch, old.hash, new.hash, outcome.inputs if outcome.inputs is not None else run.inputs,
            variables, sinks_done, len(new.sinks) - len(sinks_done), note=self.journal.note(why))
        if switched:
            self.journal.run(run.run_id, RunStatus.RUNNING, RunStatus.PAUSED, why)
        return run_now

    def _planned(self, run: RunRecord, old: Plan, new: Plan, recs: dict[str, TaskRecord]) -> Outcome:
        # The expressions of the new version's migration see the run's tasks by their old ids.
        scope = self.scopes.scope_for(run, recs, [n for n in old.nodes if n in recs])
        return planned(run, old, new, recs, scope, EvalContext(self.clock.now()))

    def _restart(self, plan: Plan, run: RunRecord, epoch: int) -> None:
        """Step 4: every call is a no-op when repeated, so a redelivery simply makes them all again."""
        recs = self.store.list_tasks(run.run_id)
        self.run_start.schedule_run_timeout(plan, run)
        if run.sinks_remaining <= 0:
            self.run_end.finalize(plan, run)  # everything the new version runs had ended
            return
        for node in plan.nodes.values():
            rec = recs.get(node.id)
            if node.role != "flow" or node.loop_of is not None or rec is None or rec.redrive != epoch:
                continue
            if rec.status == TaskStatus.WAITING:
                self.waits.ensure_wait(plan, run, node, rec)  # its timers and deadline, on the new plan
                continue
            if rec.status == TaskStatus.PENDING:
                self.propagation.restart(plan, run.run_id, node, recs, epoch)
