"""Dead letters: what to do with a message that failed every delivery (the queue's maxReceiveCount).

The task it was about is marked FAILED with ``PoisonMessage`` (no retry, no catch: the
same message failed every time) and propagates like any failure, so the run ends
FAILED with the reason instead of waiting forever. Nothing else is changed.
"""

from __future__ import annotations

import json
from typing import Any

from statemachine.plan import TERMINAL

from ..clock import iso
from ..dispatch.jobs import CodeResult
from ..ports import TaskChange, TaskRecord
from .messages import is_stale

RUN_ENDED = ("COMPLETED", "FAILED", "CANCELLED")
ALIVE = (None, "PENDING", "READY", "RUNNING", "WAITING", "RETRYING")


class DeadLettersMixin:
    def dead_letter(self, msg: dict[str, Any], receives: int) -> str:
        if "requestContext" in msg:  # a task runner's result that failed every delivery (TaskResultQueue)
            return self._dead_result(msg, receives)
        kind = msg.get("k")
        error = {"type": "PoisonMessage",
                 "message": f"its '{kind}' message failed every delivery ({receives}); see the worker's logs"}
        if kind in ("exec", "wake", "timeout", "child_done") and msg.get("task"):
            try:
                plan = self.plan(msg["plan"])
            except LookupError:
                return "unknown plan"
            node = plan.nodes.get(msg["task"])
            if node is None:
                return "unknown task"
            key = msg.get("key") or node.id
            run, recs = self.store.load(msg["run"], [key])
            rec = recs.get(key) or TaskRecord(key)
            if run is None or run.status in RUN_ENDED:
                return "the run has ended"
            if rec.status in TERMINAL:
                return "the task has ended"
            if is_stale(msg, rec):
                return "a message of before a redrive"
            change = TaskChange(status="FAILED", from_status=ALIVE,
                                set={"error": error, "ended_at": iso(self.clock.now()), "lease_until": None})
            new, applied = self._change(run.run_id, rec, change)
            if applied:
                self.propagate(plan, run.run_id, node, new)
            return "task failed"
        if kind == "start":
            run = self.store.get_run(msg["run"])
            if run is not None and run.status == "RUNNING":
                self.store.record_failure(run.run_id, "$start", {**error, "message": f"the run could not start: "
                                                                             f"{error['message']}"})
                self.store.finish_run(run.run_id, "FAILED", None, error, iso(self.clock.now()))
                return "run failed"
        return "ignored"  # notifications, reminders, timeouts of ended runs: nothing to mark

    def _dead_result(self, record: dict[str, Any], receives: int) -> str:
        """A result's attempt fails with PoisonMessage, like an exec message's task; only the result of the
        running attempt (its token checked, as when accepted) can do that: a forged one changes nothing."""
        from .code_tasks import Verdict, judge

        try:
            result = CodeResult.from_record(json.dumps(record))
            plan = self.plan(result.attempt.plan_hash)
            node = plan.nodes[result.attempt.task_id]
        except (ValueError, LookupError):
            return "not a result of this deployment"
        run, recs = self.store.load(result.attempt.run_id, [result.attempt.key])
        rec = recs.get(result.attempt.key)
        verdict, why = judge(run, rec, result)
        if verdict is not Verdict.ACCEPT:
            return f"ignored: {why}"
        error = {"type": "PoisonMessage",
                 "message": f"its task runner result failed every delivery ({receives}); see the worker's logs"}
        change = TaskChange(status="FAILED", from_status=("RUNNING",), attempt=rec.attempt,
                            set={"error": error, "ended_at": iso(self.clock.now()), "lease_until": None})
        new, applied = self._change(run.run_id, rec, change)
        if applied:
            self.propagate(plan, run.run_id, node, new)
        return "task failed"
