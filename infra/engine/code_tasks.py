"""Code tasks (python, shell, custom) run in the task runner, never in the worker (issue #9).

One attempt, as the worker starts it (``Attempts.on_exec``, attempts.py):

1. **watchdog**: the attempt's exec message, marked ``watch``, scheduled through the Timers port
   to come due just after the lease (an SQS delay up to 15 minutes, a Scheduler schedule beyond);
2. **claim**: the conditional write to RUNNING, with ``lease_until`` = now + the code's timeout +
   the dispatch's ``lease_margin`` and the SHA-256 of a fresh 256-bit token (the token itself is never stored);
3. **dispatch**: the job (the request, the token, the attempt's coordinates) goes to the runner
   through the CodeDispatch port, and the exec message is done.

The result comes back on the result queue (``Attempts.accept_result``) and is :func:`judge`d against
the stored task: recorded only for the attempt it was dispatched for. Whatever dies on the way, the
watchdog finds the attempt again: still RUNNING after its lease means the runner never answered
(or the worker died before the dispatch), and the attempt is taken over with a new token, so a late
answer of the first runner is refused. docs/durability.md lists the crash windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from statemachine.expressions import EvalContext, ExpressionError
from statemachine.limits import CODE_TASK_TYPES
from statemachine.messages import Exec, encode
from statemachine.plan import TERMINAL, Node

from ..clock import iso
from ..dispatch.jobs import AttemptRef, CodeJob, CodeResult, new_token, token_hash, token_matches
from ..ports import CodeDispatch, RunRecord, TaskRecord, Timers
from ..sandbox.build import code_request
from ..sandbox.request import CodeReply, CodeRequest
from ..tasks.base import TaskFailure, TaskResult
from .keys import timer_name

log = logging.getLogger(__name__)

# The task runner's Lambda timeout: no attempt outlives it, whatever its rendered timeout says.
RUNNER_TIMEOUT = 900.0
# The watchdog comes due this long after the lease ends, so it always finds the lease over.
WATCH_DELAY = 1.0
# The largest reply read back from the payload bucket: a python task's names travel with its output.
MAX_REPLY = 64 * 1024 * 1024


def runs_code(node: Node, rec: TaskRecord) -> bool:
    """Is this attempt of ``node`` the running of workflow code (and not its approval gate first)?"""
    if node.kind != "task" or node.type not in CODE_TASK_TYPES:
        return False
    return node.requires_approval is None or bool((rec.approval or {}).get("result"))


def watch_message(ref: AttemptRef) -> Exec:
    """A watchdog: it looks at a running attempt, and never advances a finished one."""
    return Exec(ref.run_id, ref.plan_hash, ref.task_id, ref.attempt, key=ref.key, epoch=ref.epoch, watch=True)


class Verdict(Enum):
    ACCEPT = "accept"  # the outcome of the running attempt: record it
    REPLAY = "replay"  # recorded before (the result delivered again): carry on from what was recorded
    DROP = "drop"  # forged, stale, superseded by a takeover, or for a run that is over: change nothing


def judge(run: RunRecord | None, rec: TaskRecord | None, result: CodeResult) -> tuple[Verdict, str]:
    """What to do with a result, from the task as stored. Only a result whose token hashes to the
    stored hash speaks for the attempt; the hash changes with every claim (a retry, a takeover)."""
    ref = result.attempt
    if run is None or rec is None or rec.status == "PENDING":
        return Verdict.DROP, "no such task"
    if run.status in ("COMPLETED", "FAILED", "CANCELLED"):
        return Verdict.DROP, f"the run is {run.status}"
    if ref.epoch != rec.redrive:
        return Verdict.DROP, f"epoch {ref.epoch}, the task is at {rec.redrive}"
    if not token_matches(result.token, rec.token_hash):
        return Verdict.DROP, "the token does not match the attempt's"
    if rec.status == "RUNNING" and rec.attempt == ref.attempt:
        return Verdict.ACCEPT, "the running attempt"
    if rec.status in TERMINAL and rec.attempt == ref.attempt:
        return Verdict.REPLAY, f"already {rec.status}"
    if rec.status == "RETRYING" and rec.attempt == ref.attempt + 1:
        return Verdict.REPLAY, "already RETRYING"
    return Verdict.DROP, f"attempt {ref.attempt}, the task is {rec.status} at attempt {rec.attempt}"


@dataclass(frozen=True)
class Prepared:
    """An attempt ready to be claimed and dispatched."""

    ref: AttemptRef
    token: str
    request: CodeRequest
    lease_until: datetime

    @property
    def claim_fields(self) -> dict[str, Any]:
        """What the claim writes besides the usual: the lease and the token's hash; the last attempt's
        print-out goes (it belongs to the attempt that made it)."""
        return {"lease_until": iso(self.lease_until), "token_hash": token_hash(self.token), "printed": None}


class CodeTasks:
    """The engine's collaborator for code tasks: the watchdog, the token, the dispatch, the reply."""

    def __init__(self, dispatch: CodeDispatch, timers: Timers, custom_modules: tuple[str, ...] = ()):
        self.dispatch = dispatch
        self.timers = timers
        self.custom_modules = custom_modules

    def prepare_for(self, ref: AttemptRef, node: Node, scope, run: RunRecord, ctx_now: datetime, seed: int,
                    now: datetime) -> tuple[Prepared | None, Exception | None]:
        """Build the attempt's request (with the ``now()`` and seed the claim records), then :meth:`prepare`.
        A request that cannot be built (a bad config, an expression error) is returned as the error the
        attempt fails with once claimed: nothing is armed or sent for it."""
        try:
            request = code_request(node, scope, EvalContext(now=ctx_now, seed=seed), run, self.custom_modules)
        except (TaskFailure, ExpressionError) as exc:
            return None, exc
        return self.prepare(ref, request, now), None

    def prepare(self, ref: AttemptRef, request: CodeRequest, now: datetime) -> Prepared:
        """Arm the watchdog of a new lease (before the claim, so that whatever dies after it, the
        attempt is looked at again) and return what the claim and the dispatch need."""
        timeout = min(max(float(request.timeout), 0.0), RUNNER_TIMEOUT)
        lease_until = now + timedelta(seconds=timeout + self.dispatch.lease_margin)
        self.arm(ref, lease_until)
        return Prepared(ref, new_token(), request, lease_until)

    def arm(self, ref: AttemptRef, lease_until: datetime) -> None:
        """Schedule the watchdog of ``ref`` just after ``lease_until`` (idempotent by name while pending)."""
        name = timer_name(ref.run_id, ref.key, ref.attempt, "watch", ref.epoch)
        self.timers.schedule(name, lease_until + timedelta(seconds=WATCH_DELAY), encode(watch_message(ref)))

    def start(self, prepared: Prepared, now: datetime) -> None:
        """Send the job to the runner. The URLs it may carry expire with the lease."""
        valid_for = max((prepared.lease_until - now).total_seconds(), 1.0) + WATCH_DELAY
        self.dispatch.dispatch(CodeJob(prepared.ref, prepared.token, prepared.request), valid_for)

    def outcome(self, result: CodeResult, rec: TaskRecord) -> tuple[TaskResult | TaskFailure, str | None]:
        """The task's result or failure from an accepted result, and what its code printed."""
        if result.failure is not None:
            return TaskFailure(result.failure["type"], result.failure["message"]), None
        reply = result.reply
        if result.uploaded:
            # Read from the attempt's own object, named by the stored hash: never from a name the
            # message chose, which anyone able to send to the result queue could write.
            try:
                reply = CodeReply.from_json(self.dispatch.uploaded_reply(rec.token_hash or "", MAX_REPLY))
            except ValueError as exc:
                return TaskFailure("TaskRunnerError", f"the task runner's reply is unreadable: {exc}"), None
        reply = reply or CodeReply()
        printed = reply.printed or None
        if reply.error is not None:
            return TaskFailure(reply.error["type"], reply.error.get("message", "")), printed
        return TaskResult(reply.output, dict(reply.names)), printed
