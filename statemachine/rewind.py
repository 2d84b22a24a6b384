"""Rewind's choices, pure: which task a rewind goes back to, what it discards, and what it refuses.

Every task that ran to its end (COMPLETED or FAILED) in a run that ended is a checkpoint: a rewind
to task T reopens the run from just before T, as if T and everything after it had not run yet
(infra/engine/rewind.py does the writes). What comes "after" T is read off the plan's edges: T and
every flow node that depends on it, transitively. Inside blocks:

- a member of a parallel block goes back with its block: the block judged its members together,
  so a rewind to a member rewinds the whole block (its other members run again too);
- a rewind to a loop runs all its iterations again; a rewind to a task of its body reopens the loop at one
  iteration (statemachine/loop_rewind.py): in the flow it discards what a rewind to the loop discards;
- a task in a condition's branch depends on the condition: a rewind to the condition discards
  both branches, and the condition is decided again.

Role tasks (catch handlers, compensations, finally tasks) are no checkpoints: they run in their role.

A run that has not ended (RUNNING or PAUSED: "moving") is rewound too. Then every flow task outside what
the rewind discards is kept as it stands, whatever it is doing (a task mid-attempt upstream goes on and
its result counts); the discarded tasks are reset, and what they were still doing is fenced off: each
reset item names the dependencies whose edges count only from the new epoch (:func:`fenced_deps`), and
the run names the discarded tasks whose sinks and failures do (:func:`run_fence`). With ``compensate`` the
compensations of the discarded tasks that COMPLETED run first, while the rewind holds the run PAUSED
(:func:`undoing`); a discarded task that declares a compensation and is still doing its work refuses it
(:func:`unsettled_refusal`), since its work could land after its compensation had been decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .plan import Plan
from .status import TaskStatus

# A task that ran to its end: skipped, cancelled or never reached, it has no result to go back before.
CHECKPOINTS = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})


@dataclass(frozen=True)
class Refusal:
    """Why a rewind cannot be made, and the HTTP status that says so (404: no such task; 400: a task
    that is no checkpoint; 409: not now, or not on this run)."""

    status: int
    reason: str


def target(plan: Plan, task_id: str) -> str:
    """The node a rewind to ``task_id`` goes back to: its parallel block for a block member."""
    node = plan.nodes[task_id]
    return node.parallel_of if node.parallel_of else task_id


def discarded(plan: Plan, task_id: str) -> frozenset[str]:
    """The flow nodes (outside loop bodies) a rewind to ``task_id`` runs again: its target and every
    node downstream of it, with the members of a discarded parallel block. For a task of a loop's body,
    its loop's (the loop reopens: statemachine/loop_rewind.py)."""
    loop_id = plan.nodes[task_id].loop_of
    out = {loop_id if loop_id else target(plan, task_id)}
    changed = True
    while changed:  # a block's members come before it, a member's dependents after: walk to a fixed point
        changed = False
        for node in plan.nodes.values():
            if node.role != "flow" or node.loop_of is not None or node.id in out:
                continue
            members = ([m for ids in node.config["branches"].values() for m in ids]
                       if node.kind == "parallel" else [])
            if any(d in out for d in node.deps) or any(m in out for m in members) or node.parallel_of in out:
                out.add(node.id)
                changed = True
    return frozenset(out)


def target_refusal(plan: Plan, task_id: str, status: str | None) -> Refusal | None:
    """Why ``task_id`` (whose item is ``status``, None: it has none) is no checkpoint to rewind to."""
    node = plan.nodes.get(task_id)
    if node is None:
        return Refusal(404, f"its workflow has no task '{task_id}'")
    if node.role != "flow":
        return Refusal(400, f"'{task_id}' is a {node.role} task: it runs in its role and is no checkpoint")
    if node.loop_of is not None:
        return None  # it runs once per iteration: statemachine/loop_rewind.py judges the iteration
    if status not in CHECKPOINTS:
        return Refusal(409, f"'{task_id}' is {status or 'PENDING'}: only a task that ran to its end (COMPLETED or "
                            "FAILED) is a checkpoint; rewind to one before it")
    return None


def moving_refusal(status: str, halt: bool, end_steps: bool) -> Refusal | None:
    """Why a run that has not ended (``status``; ``halt``: it is stopping; ``end_steps``: its end steps are
    fixed) cannot be rewound now, or None."""
    if status == "COMPENSATING":
        return Refusal(409, "it is COMPENSATING: its compensations are undoing completed work and the run then "
                            "ends; a rewind now would keep tasks whose work is being undone and stop compensations "
                            "mid-flight: let it end, then rewind it (with 'compensate' if you want the rest undone)")
    if halt:
        return Refusal(409, f"it is {status} and stopping (cancelled, or past its timeout): let it end, then rewind it")
    if end_steps:
        return Refusal(409, "its flow is over and its end steps (finally tasks) run: let it end, then rewind it")
    return None


# A task doing its work: it may still complete (a python task, a task runner's attempt, a callback answered,
# a child run ending) while the rewind holds the run. READY and RETRYING attempts are parked by the pause.
UNSETTLED = frozenset({TaskStatus.RUNNING, TaskStatus.WAITING})


def unsettled_refusal(plan: Plan, gone: frozenset[str], statuses: Mapping[str, str]) -> Refusal | None:
    """Why a moving run cannot be rewound with ``compensate`` now: a discarded task that declares a compensation
    is still doing its work. Its compensation would be decided (it has not COMPLETED) before its work lands, and
    what lands after is fenced off, never compensated."""
    busy = sorted(task for task in gone if plan.nodes[task].compensation is not None
                  and statuses.get(task) in UNSETTLED)
    if busy:
        return Refusal(409, f"{', '.join(busy)} declares a compensation and is still doing its work "
                            f"({statuses[busy[0]]}): its work could land after the compensations were chosen and "
                            "would not be undone; let it end, then rewind with 'compensate' (or rewind without it)")
    return None


def undoing(status: str, rewinding: int | None, role: str) -> bool:
    """Whether a task of ``role`` moves in a PAUSED run: only a compensation that a rewind holding the run runs
    first (its end steps); every other task of a paused run is parked."""
    return status == "PAUSED" and rewinding is not None and role == "compensation"


# A loop's item from its claim to its end: RUNNING while it starts, WAITING while its iterations run.
LOOP_BUSY = frozenset({TaskStatus.RUNNING, TaskStatus.WAITING})


def busy_loops(plan: Plan, gone: frozenset[str], statuses: Mapping[str, str]) -> Refusal | None:
    """A moving run's rewind waits for a discarded loop that is mid-iteration: its iteration's end is judged
    on its body's items as they stand, which a rewind resets under it. A loop is mid-iteration from its claim
    (RUNNING) until it ends: while its iterations run, its item is WAITING on them."""
    busy = sorted(task for task in gone if plan.nodes[task].kind == "loop" and statuses.get(task) in LOOP_BUSY)
    if busy:
        return Refusal(409, f"the loop {', '.join(busy)} that a rewind to this task discards is mid-iteration: "
                            "let it end (or rewind to a task after it), then rewind")
    return None


def kept_moving(plan: Plan, gone: frozenset[str]) -> set[str]:
    """The flow nodes a rewind of a moving run keeps as they stand: every one it does not discard."""
    return {node.id for node in plan.nodes.values()
            if node.role == "flow" and node.loop_of is None and node.id not in gone}


def fenced_deps(plan: Plan, gone: frozenset[str], key: str) -> frozenset[str]:
    """The dependencies whose edges into the reset item ``key`` count only from the rewind's epoch: those it
    discarded too (a loop's body tasks, inside a discarded loop; for an iteration item ``<loop>.<i>``, the
    body tasks whose ends it counts). An edge from a kept task counts whenever it comes."""
    head, at, rest = key.partition("@")
    loop_id, dot, index = (rest if at else key).partition(".")
    if dot and index.isdigit() and loop_id in gone and loop_id in plan.nodes:
        if not at:
            return frozenset(plan.nodes[loop_id].config["body"])  # the iteration: its last body tasks' edges
        node = plan.nodes.get(head)
        return frozenset(node.deps) if node is not None and node.loop_of == loop_id else frozenset()
    node = plan.nodes.get(key)
    if node is None or node.id not in gone:
        return frozenset()
    return frozenset(d for d in node.deps if d in gone)


def run_fence(fenced: frozenset[str], gone: frozenset[str], ended: set[str]) -> list[str]:
    """The run's fenced tasks after a moving rewind discarded ``gone``: those, and the ones an earlier rewind
    fenced that have ended since (a late result from before that rewind still must not count; one that has
    not ended is kept running and counts from its own epoch)."""
    return sorted(gone | {task for task in fenced if task in ended})


def compensated_kept(end_comps: list[list[str]] | None, kept: set[str]) -> list[str]:
    """The tasks a rewind would keep whose compensation ran when the run ended: their work was undone."""
    return sorted({done for _, done in end_comps or [] if done in kept})



def to_compensate(plan: Plan, statuses: Mapping[str, str], gone: frozenset[str],
                  end_comps: list[list[str]] | None) -> list[list[str]]:
    """The compensation steps a rewind with ``compensate`` runs before its reset, as the run's end steps
    (``[compensation task, compensated task]`` pairs): one per discarded task that COMPLETED and declares
    a compensation not run yet (``end_comps``: those that ran when the run ended), the latest in the
    plan's order first, as a saga undoes."""
    done = {task for _, task in end_comps or []}
    return [[node.compensation.task_id, node.id] for node in reversed(plan.nodes.values())
            if node.id in gone and node.compensation is not None and statuses.get(node.id) == "COMPLETED"
            and node.id not in done]
