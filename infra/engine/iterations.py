"""A loop's iteration as the engine and the API read it: its own item (``keys.iteration_key``), or, in a
loop whose iterations are folded into their one body task (``statemachine.loop_steps.folded_task``),
that task's item read as the iteration's.

A folded iteration writes nothing of its own: its task's claim is its start (the claim keeps the
iteration's item in the task's ``role_ctx``) and its task's end is its end, so a one-task for_each
costs one write per iteration where an iteration item cost two more (docs/durability.md rule 16).
"""

from __future__ import annotations

from statemachine.loop_steps import folded_status
from statemachine.status import TASK_ENDED, TaskStatus

from ..ports import TaskRecord
from .keys import node_of


def is_folded(loop: TaskRecord | None) -> bool:
    """Whether the loop ``loop`` (its item) was started with its iterations folded: set by its start,
    kept by a redrive that keeps its iterations; a loop an earlier release started has iteration items."""
    state = loop.loop_state if loop is not None else None
    return bool(state and state.get("folded"))


def started_folded(task: TaskRecord | None) -> bool:
    """Whether a body task's item is that of a folded iteration: only such a start puts the iteration's
    item in its task's context (an iteration item's body tasks find it on the iteration's item)."""
    return task is not None and "item" in (task.role_ctx or {})


def folded_iteration(key: str, task: TaskRecord | None) -> TaskRecord | None:
    """Iteration ``key``'s record read from its one task's item ``task``, as its own item would have
    been written (``Loops.iteration_done``); None while it has not started."""
    status = folded_status(task.status if task is not None else None)
    if task is not None and status is None and task.parked:
        status = TaskStatus.RUNNING  # started, its task parked while the run is paused (pausing.py)
    if task is None or status is None:
        return None
    failed = status == TaskStatus.FAILED
    return TaskRecord(
        key, status=status, attempt=1,
        output=task.output if task.status == TaskStatus.COMPLETED else None,
        error={**(task.error or {}), "task_id": node_of(task.task_id)} if failed else None,
        started_at=task.started_at, ended_at=task.ended_at if task.status in TASK_ENDED else None,
        role_ctx=task.role_ctx, redrive=task.redrive)
