"""Starting a run, and the workflow's own timeout (``config.timeout``)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from statemachine.inputs import InputError, initial_variables, prepare_inputs
from statemachine.limits import MAX_INPUT
from statemachine.messages import ParentRef, RunTimeout, Start
from statemachine.plan import Plan
from statemachine.status import RUN_ENDED, RunStatus

from ..clock import iso, parse_iso
from ..ports import Clock, RunRecord, StateStore
from .halting import Halting
from .journal import Journal
from .keys import timer_name
from .messenger import Messenger
from .plans import Plans
from .run_end import RunEnd


class RunStart:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, messenger: Messenger, run_end: RunEnd,
                 halting: Halting, journal: Journal):
        self.store = store
        self.journal = journal
        self.clock = clock
        self.plans = plans
        self.messenger = messenger
        self.run_end = run_end
        self.halting = halting

    def start_run(self, plan: Plan, inputs: dict[str, Any] | None = None, run_id: str | None = None,
                  parent: ParentRef | None = None) -> str:
        """Validate the input, then make the run durable. Raises InputError on bad input."""
        prepared = prepare_inputs(plan, inputs)
        if len(json.dumps(prepared)) > MAX_INPUT:
            raise InputError(f"the input is larger than {MAX_INPUT >> 20} MB")
        self.plans.save(plan)
        run_id = run_id or uuid.uuid4().hex
        # Enqueue first: if we die before the run item is written, the worker
        # writes it from the message; POST /runs answers only after both.
        self.messenger.send(Start(run_id, plan.hash, prepared, parent))
        self._create(plan, run_id, prepared, parent)
        return run_id

    def on_start(self, msg: Start) -> None:
        plan = self.plans.get(msg.plan)
        # Almost always the API wrote the run already: a read of it costs a fifth of the write that its
        # condition would refuse (a refused conditional write is billed as a write). Not there (the API
        # died between its enqueue and its write): written here, with the same condition as the API's.
        run = self.store.get_run(msg.run) or self._create(plan, msg.run, msg.inputs, msg.parent)
        if run.status in RUN_ENDED:
            return
        self.schedule_run_timeout(plan, run)
        if not plan.roots:
            self.run_end.finalize(plan, run)
            return
        # Ready: the first root runs next in this invocation (carry_on.py), the others go out in one
        # batch. A redelivery of the start message makes them ready again, as a sent exec would be.
        # A run moving as started has, on its first delivery, no task items: the carried root loads
        # without a read (the run is what _create saw) and its claim is conditional on having no item;
        # on a redelivery it has one, the claim is refused and it is decided again on its item as read
        # (Attempts._presumed_wrong). A run paused, stopping or redriven is read as usual.
        unwritten = run.status == RunStatus.RUNNING and not run.halt and not run.redrives and run.rewinding is None
        for root in plan.roots:
            self.messenger.ready(run.run_id, plan.hash, root, unwritten=unwritten)

    def schedule_run_timeout(self, plan: Plan, run: RunRecord) -> None:
        """config.timeout: counted from the start, or from the last redrive (with a timer of its own)."""
        if plan.timeout is None:
            return
        deadline = parse_iso(run.redriven_at or run.created_at) + timedelta(seconds=plan.timeout)
        self.messenger.schedule(timer_name(run.run_id, "$run", 0, "run_timeout", run.redrives), deadline,
                                RunTimeout(run.run_id, plan.hash, run.redrives))

    def on_run_timeout(self, msg: RunTimeout) -> None:
        """The run stops (WorkflowTimeout); what did not finish is cancelled, then the end steps run
        (compensation, finally) as for any failure."""
        plan = self.plans.get(msg.plan)
        run = self.store.get_run(msg.run)
        if run is None or run.status != RunStatus.RUNNING or run.end_comps is not None:
            return
        if msg.epoch != run.redrives:
            return  # the timer of a run since redriven, which has a timer (and a deadline) of its own
        deadline = parse_iso(run.redriven_at or run.created_at) + timedelta(seconds=plan.timeout or 0)
        if deadline > self.clock.now() + timedelta(seconds=0.5):
            self.messenger.schedule(timer_name(run.run_id, "$run", 1, "run_timeout", run.redrives), deadline, msg)
            return
        error = {"type": "WorkflowTimeout", "message": f"the workflow ran longer than {plan.timeout:g}s"}
        self.halting.halt_now(plan, run, "$timeout", error)

    def _create(self, plan: Plan, run_id: str, inputs: dict[str, Any], parent: ParentRef | None) -> RunRecord:
        """The run's item, written if it is not there yet (by the API, or by the start message's delivery)."""
        created, run = self.store.create_run(self._new_run(plan, run_id, inputs, parent))
        if created:
            self.journal.run(run_id, run.status, None, f"started {plan.workflow_id}@{plan.version}")
        return run

    def _new_run(self, plan: Plan, run_id: str, inputs: dict[str, Any], parent: ParentRef | None) -> RunRecord:
        return RunRecord(
            run_id=run_id,
            plan_hash=plan.hash,
            workflow_id=plan.workflow_id,
            status=RunStatus.RUNNING,
            inputs=inputs,
            variables=initial_variables(plan, inputs),
            created_at=iso(self.clock.now()),
            sinks_remaining=len(plan.sinks),
            parent=parent.to_dict() if parent else None,
            last_change=self.journal.note(f"started {plan.workflow_id}@{plan.version}"),
        )
