"""What follows one finished iteration of a loop (pure): fail, break, start the next, count, finish.

The engine reads the loop's state, evaluates nothing itself, and carries out the step this
returns; the loop's conditions (``break_on``, a while loop's ``condition``) are passed in as
callables so that each is evaluated only when the decision needs it, as the language says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .plan import Node, Plan
from .status import TASK_ENDED, TaskStatus


@dataclass(frozen=True)
class AfterIteration:
    start: int | None = None  # the iteration to start next
    finish_after: int | None = None  # the loop ends with this many iterations (when ``count`` agrees)
    count: bool = False  # parallel iterations end in any order: finish once all have (the store counts)
    fail: tuple[str, str] | None = None  # the loop fails: (error type, message)
    why: str = ""


def following_index(config: Mapping[str, Any], index: int) -> int | None:
    """The iteration that starts when iteration ``index`` ends: the next one, or with ``max_concurrent``
    parallel iterations the one ``max_concurrent`` further; None for a parallel loop without a limit,
    which started every iteration at once."""
    step = config.get("max_concurrent") if config["parallel"] else 1
    return index + step if step else None


def in_parallel(config: Mapping[str, Any]) -> bool:
    """Whether a loop's iterations run in parallel: a for_each's with ``parallel`` (a while loop's next
    iteration waits on its condition, evaluated after the one before: they run one after another)."""
    return bool(config["parallel"]) and config["type"] == "for_each"


def after_iteration(config: Mapping[str, Any], total: int | None, index: int, outcome: Mapping[str, Any],
                    break_hit: Callable[[], bool], goes_on: Callable[[int], bool],
                    reopened: bool = False) -> AfterIteration:
    """``total``: a for_each's item count (None for while/do_while); ``outcome``: the iteration's
    branch view (status, error); ``break_hit()``: ``break_on`` holds; ``goes_on(i)``: a while loop's
    condition holds before iteration ``i``; ``reopened``: the loop was reopened at this iteration by a
    rewind into its body (statemachine/loop_rewind.py). A parallel loop's reopened iteration is the only
    one that runs again (the others were kept as they ran, whatever their index): it starts none, even in
    an early window, and its end is the loop's (counted, as the last window's are)."""
    following = following_index(config, index)
    if outcome["status"] == "FAILED":
        error = outcome.get("error") or {}
        return AfterIteration(fail=(error.get("type", "Error"), f"iteration {index}: {error.get('message', '')}"),
                              why=f"iteration {index} failed")
    if config.get("break_on") is not None and break_hit():
        return AfterIteration(finish_after=index + 1, why=f"break_on held after iteration {index}")
    if config["parallel"] and total is not None:
        if following is not None and following < total and not reopened:
            # Not the end: the iteration it starts ends after it (and asks, or starts another).
            return AfterIteration(start=following, why=f"a parallel iteration ended: item {following} of {total}")
        if reopened:
            return AfterIteration(finish_after=total, count=True, why="the iteration a rewind reopened ended")
        return AfterIteration(finish_after=total, count=True, why="a parallel iteration ended, none left to start")
    if following is None:  # only a parallel loop without a limit has none, and it has a count
        raise ValueError("a loop runs in parallel without a count of its items")
    if total is not None:
        if following < total:
            return AfterIteration(start=following, why=f"item {following} of {total}")
        return AfterIteration(finish_after=total, why=f"all {total} items done")
    if not goes_on(following):
        return AfterIteration(finish_after=following, why=f"its condition ended it after {following} iterations")
    if following >= config["max_iterations"]:
        return AfterIteration(fail=("MaxIterationsExceeded",
                                    f"still looping after max_iterations ({config['max_iterations']})"),
                              why="max_iterations reached")
    return AfterIteration(start=following, why=f"its condition holds before iteration {following}")


def ended_iteration(key: str, loop_id: str, status: str | None) -> bool:
    """Is ``key`` an iteration item of ``loop_id`` (``<loop>.<index>``) that has ended? What a store's
    ``ended_iterations`` counts, the same on every store."""
    head, dot, index = key.partition(".")
    return head == loop_id and bool(dot) and index.isdigit() and status in TASK_ENDED


def folded_task(plan: Plan, loop: Node) -> str | None:
    """The one body task a loop's iterations are kept in, or None where each iteration has an item of
    its own. A for_each whose body is one task (and whose plan catches no failure, and that has no
    ``break_on``) writes no iteration item: an iteration starts with its task's claim, which keeps the
    iteration's item, and ends with its task's end, so it costs that task's writes and nothing more.
    Not the others: a body of several tasks counts its last tasks' ends on the iteration's item; a caught
    failure is FAILED and not yet the end; a while loop's condition, or a ``break_on``, is decided once,
    on whether the next iteration's item exists (``_loop_next``), which a task's claim writes too late."""
    config = loop.config
    body = list(config.get("body") or [])
    if config.get("type") != "for_each" or config.get("break_on") is not None or len(body) != 1 or plan.catch:
        return None
    return body[0] if plan.nodes[body[0]].kind == "task" else None


def folded_status(status: str | None) -> str | None:
    """A folded iteration's status from its task's: None before the task was claimed (no item, or a
    redrive's PENDING one), RUNNING until it ends, then FAILED if it failed (its plan catches nothing)
    and COMPLETED otherwise, as an iteration's own item ended (a skipped or cancelled body ends it
    COMPLETED)."""
    if status in (None, TaskStatus.PENDING):
        return None
    if status not in TASK_ENDED:
        return TaskStatus.RUNNING
    return TaskStatus.FAILED if status == TaskStatus.FAILED else TaskStatus.COMPLETED
