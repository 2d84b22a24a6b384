"""Dead letters: what to do with a message that failed every delivery (the queue's maxReceiveCount).

The task it was about is marked FAILED with ``PoisonMessage`` (no retry, no catch: the
same message failed every time) and propagates like any failure, so the run ends
FAILED with the reason instead of waiting forever. Nothing else is changed.
"""

from __future__ import annotations

import json
from typing import Any

from statemachine.history import Retention
from statemachine.messages import ChildDone, Exec, Start, TimerFired, decode
from statemachine.status import RUN_ENDED, TASK_ALIVE, TASK_ENDED, RunStatus, TaskStatus

from ..clock import iso
from ..dispatch.jobs import CodeResult
from ..ports import Clock, StateStore, TaskChange, TaskRecord
from .code_tasks import Verdict, judge
from .journal import Journal
from .keys import is_stale
from .outcomes import Outcomes
from .plans import Plans
from .propagate import Propagation


class DeadLetters:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, outcomes: Outcomes, propagation: Propagation,
                 journal: Journal, retention: Retention):
        self.store = store
        self.retention = retention
        self.journal = journal
        self.clock = clock
        self.plans = plans
        self.outcomes = outcomes
        self.propagation = propagation

    def dead_letter(self, raw: dict[str, Any], receives: int) -> str:
        """Returns what was done (for the log)."""
        if "requestContext" in raw:  # a task runner's result that failed every delivery (TaskResultQueue)
            return self._dead_result(raw, receives)
        try:
            msg = decode(raw)
        except ValueError as exc:
            return f"ignored: {exc}"
        kind = raw.get("k")
        error = {"type": "PoisonMessage",
                 "message": f"its '{kind}' message failed every delivery ({receives}); see the worker's logs"}
        if isinstance(msg, (Exec, TimerFired, ChildDone)):
            run_id, plan_hash, task_id, key, epoch = (
                (msg.parent.run, msg.parent.plan, msg.parent.task, msg.parent.key, 0) if isinstance(msg, ChildDone)
                else (msg.run, msg.plan, msg.task, msg.item, msg.epoch))
            try:
                plan = self.plans.get(plan_hash)
            except LookupError:
                return "unknown plan"
            node = plan.nodes.get(task_id)
            if node is None:
                return "unknown task"
            run, recs = self.store.load(run_id, [key])
            rec = recs.get(key) or TaskRecord(key)
            if run is None or run.status in RUN_ENDED:
                return "the run has ended"
            if rec.status in TASK_ENDED:
                return "the task has ended"
            if is_stale(epoch, rec):
                return "a message of before a redrive"
            change = TaskChange(status=TaskStatus.FAILED, from_status=TASK_ALIVE,
                                set={"error": error, "ended_at": iso(self.clock.now()), "lease_until": None})
            new, applied = self.outcomes.change(run.run_id, rec, change, f"PoisonMessage: its '{kind}' message")
            if applied:
                self.propagation.propagate(plan, run.run_id, node, new)
            return "task failed"
        if isinstance(msg, Start):
            run = self.store.get_run(msg.run)
            if run is not None and run.status == RunStatus.RUNNING:
                self.store.record_failure(run.run_id, "$start", {**error, "message": f"the run could not start: "
                                                                             f"{error['message']}"})
                why = "PoisonMessage: its start message"
                expires = self._retention(run.plan_hash).expires(self.clock.now())
                if self.store.finish_run(run.run_id, RunStatus.FAILED, None, error, iso(self.clock.now()),
                                         note=self.journal.note(why), expires=expires):
                    self.journal.run(run.run_id, RunStatus.FAILED, run.status, why)
                return "run failed"
        return "ignored"  # notifications, reminders, timeouts of ended runs: nothing to mark

    def _retention(self, plan_hash: str) -> Retention:
        """The run's: its workflow's retention_policy, else the deployment's (a plan not found: the latter)."""
        try:
            return self.retention.of_workflow(self.plans.get(plan_hash).retention)
        except LookupError:
            return self.retention

    def _dead_result(self, record: dict[str, Any], receives: int) -> str:
        """A result's attempt fails with PoisonMessage, like an exec message's task; only the result of the
        running attempt (its token checked, as when accepted) can do that: a forged one changes nothing."""
        try:
            result = CodeResult.from_record(json.dumps(record))
            plan = self.plans.get(result.attempt.plan_hash)
            node = plan.nodes[result.attempt.task_id]
        except (ValueError, LookupError):
            return "not a result of this deployment"
        run, recs = self.store.load(result.attempt.run_id, [result.attempt.key])
        rec = recs.get(result.attempt.key)
        verdict, why = judge(run, rec, result)
        if verdict is not Verdict.ACCEPT or run is None or rec is None:
            return f"ignored: {why}"
        error = {"type": "PoisonMessage",
                 "message": f"its task runner result failed every delivery ({receives}); see the worker's logs"}
        change = TaskChange(status=TaskStatus.FAILED, from_status=(TaskStatus.RUNNING,), attempt=rec.attempt,
                            set={"error": error, "ended_at": iso(self.clock.now()), "lease_until": None})
        new, applied = self.outcomes.change(run.run_id, rec, change, "PoisonMessage: its task runner result")
        if applied:
            self.propagation.propagate(plan, run.run_id, node, new)
        return "task failed"
