"""Rewind: an ended run reopens from just before one of its tasks, discarding what came after it (the
seed's ``checkpoint_restore``, beside redrive). `POST /runs/{id}/rewind`, `loopline rewind RUN --to TASK`.

Every task that ran to its end is a checkpoint. Which tasks a rewind to T discards (T, everything downstream of
it, and how blocks and loops count) is decided in statemachine/rewind.py; everything else that
finished well is kept, by redrive's own rule (redrive.py ``kept_nodes``: what failed, or was decided on
a discarded result, runs again too).

A rewind shares redrive's epochs (``RunRecord.redrives``): the items it resets are stamped with the
new epoch, so every message, timer, link and child run of before is stale by the same rules
(``keys.is_stale``), and a rewound run can be redriven or rewound again later. The API only queues
``{"k": "rewind", "run", "epoch": n, "to", "by", "reason", "compensate"}`` (n = the run's redrive
count + 1) and answers 202; the worker then, every step safe to repeat:

0. **Begins**: one conditional write marks rewind n to T under way (``rewinding = n``), only on an
   ended run at n - 1 with no rewind under way. From then on a redrive of the same epoch can neither
   reset nor reopen, and another rewind of epoch n (to another task) finds the mark and is dropped.
   With ``compensate`` the same write makes the run COMPENSATING, the discarded tasks' compensations
   its end steps; they run as end steps do, and the last one queues this message again
   (run_end.py), which goes on once it finds them all ended.
1. **Resets**, while the mark stands: every item not kept becomes a PENDING item stamped n (each
   write conditioned on the mark, so none lands once the run reopened).
2. **Reopens**: the mark -> RUNNING at n, outputs, failure, end steps, expiry and mark cleared; the
   note says who rewound it to what, and why (the run's history).
3. **Restarts** as a redrive does (``Redriving.restart``).

A run still moving (RUNNING or PAUSED) is rewound in the same steps, with what it is still doing fenced off
(docs/durability.md, "Rewinding a moving run"):

0. **Pauses**: the same write marks the rewind and makes the run PAUSED (``begin_rewind(moving=True)``, only
   on a RUNNING or PAUSED run at n - 1, not stopping, no end steps), so no task starts while it is rewound:
   what arrives is parked. A resume, a pause, a cancel and a migration are refused while the mark stands.
1. **Resets** the discarded tasks only; every other flow task is kept as it stands, even mid-attempt (its
   result lands and counts). Each reset item is stamped n and names the discarded dependencies whose edges
   count only from n (``TaskRecord.fenced``): a result from before the rewind (a python task finishing, a
   task runner's late result, a timer, an approval decided, a parallel branch) fails its write, which is
   conditional on the epoch it was decided on (``TaskChange.epoch``), or, if it landed before the reset,
   its edges are refused by the items they would count on. A sub-workflow run a discarded task waited for
   is cancelled.
2. **Reopens** (``reopen_moving``): PAUSED with the mark -> RUNNING at n; the discarded tasks are taken out of
   the counted sinks and failures, and fenced on the run (``RunRecord.fenced``) so a sink or failure of one
   from before n is not counted when it arrives later.
3. **Restarts**: as a redrive does, then what was parked during the pause is started (``Pausing.unpark_all``).

With ``compensate`` the pause also fixes the discarded tasks' compensations as the run's end steps; they run
while the mark holds the run PAUSED (a compensation is the one task a held run starts: ``undoing``), as an
ended run's do, the last one sends this message again, and steps 1 to 3 follow (the reopen clears them).

Refused: a COMPENSATING run, or one stopping (cancel, timeout) or in its end steps (let it end first); a
moving run with ``compensate`` while a discarded task that declares a compensation is RUNNING or WAITING
(its work could land after its compensation was passed over); a moving run whose rewind would discard a
loop mid-iteration (RUNNING, or WAITING on its iterations), a rewind into its body included (a moving run is
rewound into a loop's body once the loop has ended: loop_rewind.py); a sub-workflow's run (rewind its
parent), a run with a rewind under way, a task that is no checkpoint
(statemachine/rewind.py), and a rewind that would keep a task whose compensation ran when the run
ended (its work was undone: rewind to it, or to before it, instead).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from statemachine.messages import Rewind
from statemachine.plan import Plan
from statemachine.rewind import (
    Refusal,
    busy_loops,
    compensated_kept,
    discarded,
    fenced_deps,
    kept_moving,
    moving_refusal,
    run_fence,
    target,
    target_refusal,
    to_compensate,
    unsettled_refusal,
)
from statemachine.status import RUN_ENDED, TASK_ENDED, RunStatus, TaskStatus, WaitingFor

from ..clock import iso
from ..ports import Clock, RunRecord, StateStore, TaskRecord
from .halting import Halting
from .journal import Journal
from .keys import body_key, instance_key, iteration_of
from .loop_rewind import discarded_keys, into_iteration, iteration_to
from .messenger import Messenger
from .pausing import Pausing
from .plans import Plans
from .redrive import Redriving, kept_nodes, resets
from .run_end import RunEnd

log = logging.getLogger(__name__)


def run_refusal(run: RunRecord) -> Refusal | None:
    """Why ``run`` cannot be rewound, whatever the task, or None."""
    if run.rewinding is not None:
        return Refusal(409, f"a rewind to '{run.rewind_to}' is under way")
    if run.status not in RUN_ENDED:
        why = moving_refusal(run.status, run.halt, run.end_comps is not None)
        if why:
            return why
    if run.parent:
        return Refusal(409, f"it is a sub-workflow's run: rewind its parent run '{run.parent.get('run')}'")
    return None


def kept(plan: Plan, recs: dict[str, TaskRecord], gone: frozenset[str]) -> set[str]:
    """The flow nodes a rewind keeps: redrive's rule, with the discarded nodes read as never run."""
    return kept_nodes(plan, {key: rec for key, rec in recs.items() if key not in gone})


def refusal(plan: Plan, run: RunRecord, recs: dict[str, TaskRecord], task_id: str,
            compensate: bool = False, iteration: int | None = None) -> Refusal | None:
    """Why ``run`` cannot be rewound to ``task_id`` (``iteration``: of its loop, for a body task), or None."""
    why = run_refusal(run) or target_refusal(plan, task_id, recs[task_id].status if task_id in recs else None)
    if why:
        return why
    if plan.nodes[task_id].loop_of is not None:
        why = iteration_to(plan, recs, task_id, iteration, run.status in RUN_ENDED)[1]
        if why:
            return why
    elif iteration is not None:
        return Refusal(400, f"'{task_id}' is not in a loop's body: 'iteration' is for a task that runs in one")
    if run.status not in RUN_ENDED:
        if any(rec.redrive > run.redrives for rec in recs.values()):
            # Items stamped with the next epoch: a migration (migration.py) is moving the run to another version.
            return Refusal(409, "a migration to another version is under way: rewind once it is done")
        gone, statuses = discarded(plan, task_id), {key: rec.status for key, rec in recs.items()}
        return busy_loops(plan, gone, statuses) or (unsettled_refusal(plan, gone, statuses) if compensate else None)
    undone = compensated_kept(run.end_comps, kept(plan, recs, discarded(plan, task_id)))
    if undone:
        return Refusal(409, f"its compensation undid {', '.join(undone)}, which a rewind to '{task_id}' would "
                            "keep: rewind to one of them (or before) instead")
    return None


class Rewinding:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, messenger: Messenger, redriving: Redriving,
                 run_end: RunEnd, journal: Journal, pausing: Pausing, halting: Halting):
        self.store = store
        self.pausing = pausing
        self.halting = halting
        self.clock = clock
        self.plans = plans
        self.messenger = messenger
        self.redriving = redriving
        self.run_end = run_end
        self.journal = journal

    def rewind_run(self, run_id: str, task_id: str, by: str = "", reason: str = "",
                   compensate: bool = False, iteration: int | None = None) -> dict[str, Any] | None:
        """Queue a rewind (the worker does it). None: no such run; ``changed`` False: refused, with the
        reason and the HTTP status that says it (``code``). ``iteration``: for a task of a loop's body, the
        iteration to reopen (None: the last that ran)."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        plan = self.plans.get(run.plan_hash)
        recs = self.store.list_tasks(run_id) if run_refusal(run) is None else {}
        why = run_refusal(run) or refusal(plan, run, recs, task_id, compensate, iteration)
        if why:
            return {"run_id": run_id, "status": run.status, "changed": False, "reason": why.reason,
                    "code": why.status}
        # The iteration is chosen here, once: a redelivery, or a copy asked twice, reopens the same one.
        if plan.nodes[task_id].loop_of is not None:
            iteration = iteration_to(plan, recs, task_id, iteration, True)[0]
        # The message is all this writes: asked twice before the worker gets to it, both carry the same
        # epoch, and the first to begin is the rewind (the other is dropped, or is the same one).
        epoch = run.redrives + 1
        self.messenger.send(Rewind(run_id, epoch, task_id, by, reason, compensate, iteration))
        gone = discarded(plan, task_id)
        comps = _compensations(plan, run, recs, gone) if compensate else []
        return {"run_id": run_id, "status": run.status, "changed": True, "rewind": epoch,
                "to": target(plan, task_id), **({"iteration": iteration} if iteration is not None else {}),
                "discarded": (sorted(gone) if iteration is None else discarded_keys(plan, task_id, iteration, gone)),
                "compensating": [t for _, t in comps]}

    def on_rewind(self, msg: Rewind) -> None:
        epoch, msg = msg.epoch, _unmarked(msg)
        run = self.store.get_run(msg.run)
        if run is None:
            return
        plan = self.plans.get(run.plan_hash)
        if run.redrives == epoch - 1:
            if run.rewinding is None:
                recs = self.store.list_tasks(run.run_id)
                why = refusal(plan, run, recs, msg.to, msg.compensate, msg.iteration)
                if why:
                    log.warning("rewind %s of run %s to %r dropped: %s", epoch, run.run_id, msg.to, why.reason)
                    return
                run = self._begin(plan, run, recs, msg)
            if run.rewinding == epoch and run.rewind_to == _mark(plan, msg):
                if not self._compensated(plan, run):
                    return  # its compensations run first: the last one sends this message again (run_end.py)
                if run.status == RunStatus.PAUSED:  # a moving run's: held PAUSED by the mark
                    run = self._reset_and_reopen_moving(plan, run, msg)
                else:
                    run = self._reset_and_reopen(plan, run, msg)
            # Else another rewind of this epoch began first (dropped below while it is under way), or
            # the run reopened since it was read: this copy restarts it, as any redelivery does.
        if run is None or run.redrives != epoch or run.status in RUN_ENDED:
            return  # another epoch's message, or this epoch has ended already
        self.redriving.restart(plan, run, epoch)
        if run.status == RunStatus.RUNNING:  # (a late copy may find it paused since: its resume starts them)
            # What was parked while a moving run was held (an ended run's rewind finds nothing parked to start).
            self.pausing.unpark_all(plan, run.run_id, self.store.list_tasks(run.run_id))

    def _begin(self, plan: Plan, run: RunRecord, recs: dict[str, TaskRecord], msg: Rewind) -> RunRecord:
        """Step 0: the mark (and the pause, or the compensations to run first). Returns the run as stored."""
        epoch, before = msg.epoch, run.status
        comps = _compensations(plan, run, recs, discarded(plan, msg.to)) if msg.compensate else []
        if before not in RUN_ENDED:
            why = _who(f"paused to rewind {epoch} to {_to(msg)}", msg) + (
                f": compensating {len(comps)} tasks first" if comps else "")
            begun, run = self.store.begin_rewind(run.run_id, epoch, _mark(plan, msg), comps,
                                                 note=self.journal.note(why), moving=True)
            if begun and (before != RunStatus.PAUSED or comps):
                self.journal.run(run.run_id, RunStatus.PAUSED, before, why)
            return run
        note = _who(f"rewind {epoch} to {_to(msg)}", msg) + f": compensating {len(comps)} tasks first"
        begun, run = self.store.begin_rewind(run.run_id, epoch, _mark(plan, msg), comps,
                                             note=self.journal.note(note) if comps else None)
        if begun and comps:
            self.journal.run(run.run_id, RunStatus.COMPENSATING, before, note)
        return run

    def _reset_and_reopen_moving(self, plan: Plan, run: RunRecord, msg: Rewind) -> RunRecord | None:
        """Steps 1 and 2 for a moving run: only the discarded tasks are reset, each fenced against what came
        before. A redelivery resets them again (nothing of epoch n moves before the run reopens)."""
        epoch = msg.epoch
        recs = self.store.list_tasks(run.run_id)  # once per rewind: an operator's action
        gone = discarded(plan, msg.to)
        keep = kept_moving(plan, gone)
        note = self.journal.note(f"reset by rewind {epoch} to {_to(msg)}")
        planned = resets(plan, recs, keep, restart=gone)
        if msg.iteration is not None:  # into a loop's body, the loop ended (loop_rewind.py): it reopens there
            planned = into_iteration(plan, recs, planned, msg.to, msg.iteration,
                                     self.journal.note(f"kept by rewind {epoch} to {_to(msg)}, stamped with it"))
        for key, fields in planned.items():
            # A kept body item written again as it was (its status with it) is no reset: nothing to fence.
            fenced = fenced_deps(plan, gone, key) if not (fields or {}).get("status") else frozenset()
            keep_fields = {**({"last_change": note} if key in recs else {}), **(fields or {}),
                           **({"fenced": fenced} if fenced else {})}
            self.store.reset_task(run.run_id, key, epoch, keep_fields or None, rewinding=True)
            rec = recs.get(key)
            if rec is not None and rec.waiting_for == WaitingFor.CHILD and rec.status == TaskStatus.WAITING:
                self.halting.halt_child(rec, f"the parent run {run.run_id} was rewound to '{msg.to}'")
        ended = {key for key, rec in recs.items() if rec.status in TASK_ENDED and key not in gone}
        why = _who(f"rewind {epoch} to {_to(msg)}", msg) + f": {len(keep)} tasks kept"
        # A discarded task claimed in the instant between the check and the pause, completed since: its
        # compensation was not chosen (unsettled_refusal closes all but that instant). Said, not hidden.
        late = [task for _, task in _compensations(plan, run, recs, gone)] if run.end_comps else []
        if late:
            log.warning("rewind %s of run %s: %s completed after the rewind began, not compensated", epoch,
                        run.run_id, ", ".join(late))
            why += f"; not compensated (completed after the rewind began): {', '.join(late)}"
        reopened, stored = self.store.reopen_moving(run.run_id, epoch, sorted(gone), len(plan.sinks),
                                                    run_fence(run.fenced, gone, ended), iso(self.clock.now()),
                                                    note=self.journal.note(why))
        if reopened:
            self.journal.run(run.run_id, RunStatus.RUNNING, RunStatus.PAUSED, why)
        return stored

    def _compensated(self, plan: Plan, run: RunRecord) -> bool:
        """Whether the compensations a rewind runs first have all ended; if not, the first that has not is
        (sent again: a duplicate of a running one is dropped by its claim). An ended run's rewind runs them
        COMPENSATING, a moving run's while it holds the run PAUSED."""
        if not (run.status == RunStatus.COMPENSATING or (run.status == RunStatus.PAUSED and run.end_comps)):
            return True
        keys = [instance_key(task, done) for task, done in run.end_comps or []]
        _, recs = self.store.load(run.run_id, keys)
        for index, key in enumerate(keys):
            rec = recs.get(key) or TaskRecord(key)
            # Reset by this rewind (stamped with its epoch): the resets began, so they had all ended.
            if rec.status not in TASK_ENDED and rec.redrive != run.rewinding:
                self.run_end.end_step(plan, run, index)
                return False
        return True

    def _reset_and_reopen(self, plan: Plan, run: RunRecord, msg: Rewind) -> RunRecord | None:
        """Steps 1 and 2. A redelivery lists the items again: a reset item is PENDING, never kept, so it
        chooses the same items."""
        epoch, before = msg.epoch, run.status
        recs = self.store.list_tasks(run.run_id)  # once per rewind: an operator's action
        gone = discarded(plan, msg.to)
        keep = kept(plan, recs, gone)
        note = self.journal.note(f"reset by rewind {epoch} to {_to(msg)}")
        planned = resets(plan, recs, keep, restart=gone)
        if msg.iteration is not None:  # into a loop's body: the loop reopens at that iteration (loop_rewind.py)
            planned = into_iteration(plan, recs, planned, msg.to, msg.iteration,
                                     self.journal.note(f"kept by rewind {epoch} to {_to(msg)}, stamped with it"))
        for key, fields in planned.items():
            self.store.reset_task(run.run_id, key, epoch, {"last_change": note, **(fields or {})}
                                  if key in recs else fields, rewinding=True)
        sinks = [s for s in plan.sinks if s in keep]
        why = _who(f"rewind {epoch} to {_to(msg)}", msg) + f": {len(keep)} tasks kept"
        reopened, stored = self.store.reopen_run(run.run_id, epoch, sinks, len(plan.sinks) - len(sinks),
                                                 iso(self.clock.now()), note=self.journal.note(why), rewinding=True)
        if reopened:
            self.journal.run(run.run_id, RunStatus.RUNNING, before, why)
        return stored


def _mark(plan: Plan, msg: Rewind) -> str:
    """What the run's mark says a rewind goes back to: the task, or for a loop body's its item key in the
    iteration (``<task>@<loop>.<i>``), so that the message its compensations send again (run_end.py) says it."""
    loop_id = plan.nodes[msg.to].loop_of if msg.to in plan.nodes else None
    return msg.to if msg.iteration is None or loop_id is None else body_key(msg.to, loop_id, msg.iteration)


def _unmarked(msg: Rewind) -> Rewind:
    """A message made from the run's mark (run_end.py) told apart into task and iteration again."""
    where = iteration_of(msg.to) if msg.iteration is None else None
    return msg if where is None else replace(msg, to=msg.to.split("@", 1)[0], iteration=where[1])


def _to(msg: Rewind) -> str:
    """Where a rewind goes back to, as its history says it."""
    return f"'{msg.to}'" + (f" in iteration {msg.iteration}" if msg.iteration is not None else "")


def _who(what: str, msg: Rewind) -> str:
    return what + (f" by {msg.by}" if msg.by else "") + (f" ({msg.reason})" if msg.reason else "")


def _compensations(plan: Plan, run: RunRecord, recs: dict[str, TaskRecord], gone: frozenset[str]) -> list[list[str]]:
    return to_compensate(plan, {key: rec.status for key, rec in recs.items()}, gone, run.end_comps)
