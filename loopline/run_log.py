"""`loopline dev`'s line on stderr when a run starts and when it ends.

The engine already records every run transition on the ``loopline.transitions`` logger
(infra/engine/journal.py, at DEBUG, one JSON object a line), in whichever thread applied it, the
API's or the worker's. The dev server listens there rather than being told by the engine: the
handlers it runs are the ones that ship, wired from the environment as on AWS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from infra.engine.journal import transitions_log
from infra.ports import RunRecord
from statemachine.status import RUN_ENDED, RunStatus

Lookup = Callable[[str], RunRecord | None]


def run_line(event: dict, run: RunRecord | None) -> str | None:
    """The line for one transition record, or None when it neither starts nor ends a run."""
    if event.get("event") != "RunTransition":
        return None
    status, previous = event.get("status"), event.get("previous")
    workflow = run.workflow_id if run is not None else "?"
    if status == RunStatus.RUNNING and (previous is None or previous in RUN_ENDED):
        how = "started" if previous is None else f"redriven from {previous}"
        return f"run {event['run_id']} {how}: workflow={workflow} status={status}"
    if status in RUN_ENDED and previous not in RUN_ENDED:
        return (f"run {event['run_id']} ended: workflow={workflow} status={status} "
                f"duration={_duration(run, event.get('at'))}")
    return None


def _duration(run: RunRecord | None, at: str | None) -> str:
    try:
        # From the run's (last) start to this transition, both stamped by the engine's clock.
        start = datetime.fromisoformat((run.redriven_at or run.created_at) if run else "")
        seconds = (datetime.fromisoformat(at or "") - start).total_seconds()
    except ValueError:
        return "?"
    return f"{seconds:.2f}s" if seconds < 120 else f"{seconds / 60:.1f}min"


class RunLog(logging.Handler):
    def __init__(self, log: Callable[[str], None], lookup: Lookup):
        super().__init__(logging.DEBUG)
        self.log, self.lookup = log, lookup

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = json.loads(record.getMessage())
            if event.get("event") != "RunTransition":
                return
            line = run_line(event, self.lookup(event["run_id"]))
        except Exception as error:  # a log line must never fail the transition it reports
            line = f"loopline dev: could not report a run transition: {type(error).__name__}: {error}"
        if line:
            self.log(line)


def watch_runs(log: Callable[[str], None], lookup: Lookup) -> Callable[[], None]:
    """Report run starts and ends to ``log`` until the returned function is called."""
    handler = RunLog(log, lookup)
    level, propagate = transitions_log.level, transitions_log.propagate
    if not transitions_log.isEnabledFor(logging.DEBUG):
        # Nobody asked to see every transition: turned on for this handler alone.
        transitions_log.setLevel(logging.DEBUG)
        transitions_log.propagate = False
    transitions_log.addHandler(handler)

    def stop() -> None:
        transitions_log.removeHandler(handler)
        transitions_log.setLevel(level)
        transitions_log.propagate = propagate

    return stop
