"""CodeDispatch without AWS (local mode, tests): the runner's code on a thread, its record on a queue.

It does what Lambda does for an asynchronous invocation with destinations: run the function
(here :func:`infra.dispatch.runner.run_job`, the task runner's own code) and put the
destination record, success or failure, on the result queue. ``inline`` runs the job at once in
the caller's thread instead, for deterministic tests and harnesses. No payload bucket: requests
and replies travel inline whatever their size.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from datetime import datetime
from typing import Any, Callable

from infra.dispatch.jobs import CodeJob, destination_record
from infra.ports import Clock
from infra.sandbox.launch import SUPERVISOR_GRACE
from infra.sandbox.settings import SandboxSettings

from .queue import LocalQueue

log = logging.getLogger(__name__)
RUNNER_ARN = "arn:aws:lambda:local:000000000000:function:TaskRunnerFunction"
# A job waits at most this long for one of the runner slots; one that waited longer is dropped, never
# run (Lambda's MaximumEventAgeInSeconds, shorter here: no invocation queue crosses a network).
START_WITHIN = 10.0
# The lease beyond the code's timeout: the wait to start, the supervisor's grace to clean up and
# answer (infra/sandbox/launch.py), and a few seconds for the record to reach the result queue.
LEASE_MARGIN = START_WITHIN + SUPERVISOR_GRACE + 5.0


class InMemoryDispatch:
    lease_margin = LEASE_MARGIN

    def __init__(self, results: LocalQueue, clock: Clock, runner: Callable[[Any], Any] | None = None,
                 inline: bool = False, workers: int = 4, sandbox: SandboxSettings | None = None):
        """``runner``: the task runner's function of a job (by default its own code, run with ``sandbox``:
        the settings the task-runner function would have)."""
        from infra.dispatch.runner import run_job

        self.results = results
        self._clock = clock
        self._runner = runner or functools.partial(run_job, settings=sandbox or SandboxSettings())
        self.inline = inline
        self._slots = threading.BoundedSemaphore(workers)  # at most this many jobs run at once
        self._closed = False

    def dispatch(self, job: CodeJob, valid_for: float) -> None:
        payload = json.loads(json.dumps(job.to_payload()))  # as it would cross: nothing shared with the caller
        if self.inline:
            self._run(payload)
            return
        # A daemon thread per job: a process that exits does not wait for running code.
        threading.Thread(target=self._queued, args=(payload, self._clock.now()), daemon=True,
                         name="task-runner").start()

    def _queued(self, payload: dict[str, Any], sent: datetime) -> None:
        with self._slots:
            waited = (self._clock.now() - sent).total_seconds()
            if waited > START_WITHIN:
                # Its lease may end before it would: the watchdog takes the attempt over instead.
                log.warning("a code task's job waited %.0f s for a runner slot: dropped, not run", waited)
            elif not self._closed:
                self._run(payload)

    def _run(self, payload: dict[str, Any]) -> None:
        response, error = None, None
        try:
            response = self._runner(payload)
        except Exception as exc:  # the runner failed: Lambda records that as the invocation's failure
            log.warning("task runner failed: %s: %s", type(exc).__name__, exc)
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        self.results.send(destination_record(payload, RUNNER_ARN, str(uuid.uuid4()), self._clock.now(),
                                             response, error))

    def uploaded_reply(self, token_hash: str, limit: int) -> bytes:
        raise LookupError("local mode has no payload bucket: every reply travels inline")

    def close(self) -> None:
        """Jobs not started are dropped (as when the process ends); running ones finish."""
        self._closed = True
