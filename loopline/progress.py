"""`loopline run`'s live progress on a terminal: one line, redrawn in place on stderr.

It says how many tasks are done of how many, which tasks run, each running loop's iterations,
and what waits for whom (an approval for its approver, a callback for its link, a timer, a
child run, a task for the tasks it depends on). Shown only when stderr is a terminal and
without --json (loopline/cli.py decides); elsewhere `run` prints its plain lines as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TextIO

from infra.engine.keys import node_of
from infra.ports import TaskRecord
from statemachine.loop_steps import folded_task
from statemachine.plan import Plan
from statemachine.status import TASK_ENDED, TaskStatus, WaitingFor

_CLEAR = "\r\x1b[K"  # back to the line's start, erase to its end
SHOWN = 3  # of each kind of entry, then "+N"


def describe(plan: Plan, view: dict[str, Any], records: Mapping[str, TaskRecord]) -> str:
    """The progress line for a run's view (GET /runs/{id}) and its task records."""
    tasks = view["tasks"]
    done = sum(1 for task_id in tasks if _done(plan, tasks, task_id))
    parts = [f"{done}/{len(tasks)} tasks done"]
    running = [t for t, task in tasks.items() if task["status"] in (TaskStatus.RUNNING, TaskStatus.RETRYING)]
    if running:
        parts.append("running: " + _few(running))
    parts += _loops(plan, tasks, records)
    waits = _approvals(view.get("approvals", []), records)
    waits += [f"{c['task_id']} waits for its callback" for c in view.get("callbacks", [])]
    for task_id, task in tasks.items():
        if task["status"] == TaskStatus.WAITING:
            # a loop body's task waits in its iteration's item (<task>@<loop>.<i>), the view shows the last
            kinds = {rec.waiting_for for key, rec in records.items()
                     if node_of(key) == task_id and rec.status == TaskStatus.WAITING}
            if WaitingFor.TIMER in kinds:
                waits.append(f"{task_id} waits for its timer")
            if WaitingFor.CHILD in kinds:
                waits.append(f"{task_id} waits for its child run")
        elif task["status"] == TaskStatus.PENDING and task_id in plan.nodes:
            blocking = [d for d in plan.nodes[task_id].deps if tasks.get(d, {}).get("status") not in TASK_ENDED]
            started = [d for d in blocking if tasks.get(d, {}).get("status") != TaskStatus.PENDING]
            if started:  # only what is next in line: not every task behind it
                waits.append(f"{task_id} waits for {', '.join(started)}")
    if waits:
        parts.append(_few(waits, "; "))
    return " | ".join(parts)


def _approvals(entries: list[dict[str, Any]], records: Mapping[str, TaskRecord]) -> list[str]:
    """One entry per approval task: whom it still waits for, how many decisions it needs and got,
    and until when (the view has one entry per approver yet to decide)."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_task.setdefault(entry["task_id"], []).append(entry)
    found = []
    for task_id, waiting in by_task.items():
        who = [str(e.get("approver") or "an approver") for e in waiting]
        request = next((rec.approval for key, rec in records.items()
                        if rec.approval and key == waiting[0].get("key", task_id)), None) or {}
        needed, asked = request.get("required_approvals", 1), len(request.get("asked") or who)
        text = f"{task_id} waits for {' or '.join(who[:SHOWN])}" + (f" +{len(who) - SHOWN}" if len(who) > SHOWN else "")
        if needed > 1 or asked > len(who):
            text += f" ({asked - len(who)} of {asked} decided, {needed} approval(s) needed)"
        if waiting[0].get("deadline"):
            text += f" until {str(waiting[0]['deadline'])[:16].replace('T', ' ')}"  # to the minute
        found.append(text)
    return found


def _done(plan: Plan, tasks: dict[str, Any], task_id: str) -> bool:
    """A loop body's task is done when its loop is: the view shows its latest iteration, which
    starts again with each one (the loop's own entry counts the iterations)."""
    node = plan.nodes.get(task_id)
    while node is not None and node.loop_of is not None:
        task_id, node = node.loop_of, plan.nodes.get(node.loop_of)
    return tasks.get(task_id, {}).get("status") in TASK_ENDED


def _loops(plan: Plan, tasks: dict[str, Any], records: Mapping[str, TaskRecord]) -> list[str]:
    found = []
    for loop_id, node in plan.nodes.items():
        if node.kind != "loop" or tasks.get(loop_id, {}).get("status") in (None, TaskStatus.PENDING, *TASK_ENDED):
            continue
        state = records[loop_id].loop_state if loop_id in records else None
        # A for_each of one task keeps each iteration in its task's item (infra/engine/iterations.py).
        folded = folded_task(plan, node) if state and state.get("folded") else None
        iteration = re.compile(re.escape(f"{folded}@{loop_id}" if folded else loop_id) + r"\.\d+")
        ended = sum(1 for key, rec in records.items() if iteration.fullmatch(key) and rec.status in TASK_ENDED)
        total = state.get("total") if state else None
        found.append(f"loop {loop_id}: {ended}/{total} iterations" if total is not None
                     else f"loop {loop_id}: {ended} iterations")
    return found


def _few(items: list[str], sep: str = ", ") -> str:
    return sep.join(items[:SHOWN]) + (f" (+{len(items) - SHOWN})" if len(items) > SHOWN else "")


class LiveLine:
    """One line at the bottom of a terminal: redrawn by ``show``; ``note`` prints a line above it."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.text = ""

    def show(self, text: str) -> None:
        width = max(20, self._columns() - 1)
        self.text = text if len(text) <= width else text[:width - 3] + "..."
        self._write(_CLEAR + self.text)

    def note(self, line: str) -> None:
        self._write(_CLEAR + line + "\n" + self.text)

    def close(self) -> None:
        if self.text:
            self._write(_CLEAR)
        self.text = ""

    def _columns(self) -> int:
        """The width of the terminal the line is drawn on (its stream's, not stdout's: stdout may be a
        pipe carrying `run --json`'s line); $COLUMNS first, as shutil reads it; 100 if neither says."""
        if os.environ.get("COLUMNS", "").isdigit():
            return int(os.environ["COLUMNS"])
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 100
        except (AttributeError, OSError, ValueError):
            return 100

    def _write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()
