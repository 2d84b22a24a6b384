"""Rewind into a loop's body, pure: which iteration it reopens, what it keeps there, and what it refuses.

A rewind to a task T of loop L's body reopens L at one iteration i (by default the last one that ran):

- iterations 0 .. i-1 are kept as they ran (their items, outputs and exports), and so is a for_each's list;
- in iteration i, T and the body tasks downstream of it (inside the body) run again; every other body task
  that finished well (COMPLETED, SKIPPED, or FAILED with its failure caught) and whose body dependencies are
  all kept is kept, by redrive's rule; everything else of the iteration runs again;
- iterations after i are discarded (they run again only if the loop decides so when iteration i ends: its
  conditions are evaluated then, on the variables as they stand);
- L waits on iteration i again without evaluating anything first: iteration i ran, so whatever let it start
  (a while's condition, a for_each's item) held; and everything downstream of L in the flow is discarded
  as a rewind to L discards it (:func:`statemachine.rewind.discarded`).

A loop whose iterations run in parallel (a for_each with ``parallel``) reopens iteration i alone: the others are
its siblings, not later iterations, and are kept as they ran whatever their index; i's end is then the loop's
(``statemachine.loop_steps.after_iteration``, ``reopened``). Refused there when another iteration did not
finish well (FAILED, CANCELLED, never started: :func:`sibling_refusal`): the loop's end would count it.

A run that has not ended (RUNNING or PAUSED) is rewound into a loop's body once that loop has ended: the rewind is
then a moving run's rewind to L (statemachine/rewind.py), what runs after L fenced off, with L reopened as above.

Refused: a moving run whose loop is mid-iteration (its iterations would go on under the rewind), and an iteration
that did not run T to its end.
"""

from __future__ import annotations

from collections.abc import Mapping

from .keys import body_key, iteration_key
from .plan import Plan
from .rewind import CHECKPOINTS, LOOP_BUSY, Refusal


def body_discarded(plan: Plan, task_id: str) -> frozenset[str]:
    """The body tasks that run again in the reopened iteration: ``task_id`` and every body task downstream
    of it. (A body holds tasks only, listed dependencies first: one pass finds them.)"""
    loop_id = plan.nodes[task_id].loop_of
    out = {task_id}
    for m in plan.nodes[loop_id].config["body"] if loop_id else []:
        if any(d in out for d in plan.nodes[m].deps):
            out.add(m)
    return frozenset(out)


def body_kept(plan: Plan, loop_id: str, gone: frozenset[str], finished_well: frozenset[str]) -> frozenset[str]:
    """The body nodes the reopened iteration keeps as they are: not discarded, finished well, and every
    dependency inside the body kept (so nothing kept was decided on a result that runs again)."""
    kept: set[str] = set()
    for task_id in plan.nodes[loop_id].config["body"]:  # in the plan's order: dependencies first
        node = plan.nodes[task_id]
        inside = [d for d in node.deps if plan.nodes[d].loop_of == loop_id]
        if task_id not in gone and task_id in finished_well and all(d in kept for d in inside):
            kept.add(task_id)
    return frozenset(kept)


def last_iteration(loop_id: str, statuses: Mapping[str, str]) -> int | None:
    """The highest iteration of ``loop_id`` that started, or None: its item ``<loop>.<i>`` or one of its body
    tasks' ``<task>@<loop>.<i>`` is not PENDING (a for_each of one task keeps no item per iteration, only its
    task's: infra/engine/iterations.py)."""
    ran = [int(index) for key, status in statuses.items()
           for head, dot, index in [key.split(":", 1)[0].rsplit("@", 1)[-1].partition(".")]
           if head == loop_id and dot and index.isdigit() and status != "PENDING"]
    return max(ran) if ran else None


def body_refusal(plan: Plan, task_id: str, iteration: int | None, statuses: Mapping[str, str],
                 ended: bool) -> Refusal | None:
    """Why a rewind to the body task ``task_id`` at ``iteration`` (None: the last that ran) cannot be made;
    ``statuses``: the run's items' statuses by key; ``ended``: the run has ended."""
    loop_id = plan.nodes[task_id].loop_of
    assert loop_id is not None
    if not ended and statuses.get(loop_id) in LOOP_BUSY:
        return Refusal(409, f"'{task_id}' runs in the loop '{loop_id}', which is mid-iteration: a moving run is "
                            "rewound into a loop's body once the loop has ended (its iterations would go on under "
                            "the rewind): let the loop end, then rewind")
    index = last_iteration(loop_id, statuses) if iteration is None else iteration
    if index is None:
        return Refusal(409, f"no iteration of the loop '{loop_id}' ran: rewind to a task before it")
    status = statuses.get(body_key(task_id, loop_id, index))
    if status not in CHECKPOINTS:
        return Refusal(409, f"in iteration {index} of the loop '{loop_id}', '{task_id}' is {status or 'PENDING'}: "
                            "only a task that ran to its end (COMPLETED or FAILED) there is a checkpoint; choose "
                            "another iteration, or a task before it")
    return None


def sibling_refusal(plan: Plan, loop_id: str, index: int, statuses: Mapping[str, str], total: int,
                    folded: bool) -> Refusal | None:
    """Why a rewind into iteration ``index`` of a loop whose iterations run in parallel cannot be made: another
    of its ``total`` iterations did not finish well. Only ``index`` is reopened, the others are kept as they
    ran (whatever their index: siblings, not later iterations), and the loop ends, once it has, with them
    all counted: one that failed, was cancelled or never started would make that end one a fresh run
    never has. ``folded``: its iterations are kept in its one task's items (infra/engine/iterations.py)."""
    body = plan.nodes[loop_id].config["body"]
    for other in range(total):
        key = body_key(body[0], loop_id, other) if folded else iteration_key(loop_id, other)
        status = statuses.get(key)
        if other != index and status not in ("COMPLETED", "SKIPPED"):
            return Refusal(409, f"iteration {other} of the loop '{loop_id}' is {status or 'not started'}, and "
                                f"its iterations run in parallel: a rewind into iteration {index} reopens it "
                                "alone and keeps the others as they ran, so rewind to the loop "
                                f"'{loop_id}' instead (all its iterations run again)")
    return None
