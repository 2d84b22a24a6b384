"""A rewind into a loop's body: the items it resets, restamps and keeps (statemachine/loop_rewind.py chooses).

A rewind to body task T of loop L at iteration i is a rewind to L (rewind.py: the same steps, marks and
epoch n) whose resets are changed so that L reopens at iteration i instead of running all its iterations
again:

- L's item becomes PENDING at n with its loop state kept (a for_each's item count) and ``reopened_at = i``:
  when L runs again (its dependencies are kept, so it is started as any reset task is), it waits on
  iteration i at once, evaluating nothing (loops.py ``Loops.reopen``); a for_each's list chunks are kept;
- iterations 0 .. i-1 and their body items are left as they are;
- iteration i's item becomes PENDING at n; its body items that run again too; its kept body items are
  written again as they are, stamped n (restamped): the whole iteration is of epoch n, so every message
  its body sends (a kept task's edge into a reset one, carried or queued) carries n and none is stale;
- the items of iterations after i, and their body items, become PENDING at n; in a loop whose iterations run
  in parallel they are left as they are, as every iteration but i is (siblings, kept as they ran; refused
  when one did not finish well: ``sibling_refusal``), and i's end is the loop's (loops.py ``_loop_next``).

A redelivery chooses the same: the iteration is in the message, the kept body items are still kept (a
restamped one is as it was), the reset ones are PENDING and never kept.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from statemachine.loop_rewind import body_discarded, body_kept, body_refusal, last_iteration, sibling_refusal
from statemachine.loop_steps import in_parallel
from statemachine.plan import Plan
from statemachine.rewind import Refusal
from statemachine.state import LastChange, loop_total

from ..ports import TaskRecord
from .iterations import is_folded
from .keys import body_key, iteration_key
from .redrive import _finished_well


def iteration_to(plan: Plan, recs: dict[str, TaskRecord], task_id: str, iteration: int | None,
                 ended: bool) -> tuple[int | None, Refusal | None]:
    """The iteration a rewind to the body task ``task_id`` reopens (``iteration``, or the last that ran), or
    why it cannot be made."""
    statuses = {key: rec.status for key, rec in recs.items()}
    why = body_refusal(plan, task_id, iteration, statuses, ended)
    if why:
        return None, why
    loop_id = plan.nodes[task_id].loop_of
    assert loop_id is not None
    index = last_iteration(loop_id, statuses) if iteration is None else iteration
    assert index is not None  # (body_refusal refuses a loop none of whose iterations ran)
    if in_parallel(plan.nodes[loop_id].config):
        looping = recs.get(loop_id)
        total = loop_total(looping.loop_state if looping is not None else None) or 0
        why = sibling_refusal(plan, loop_id, index, statuses, total, is_folded(looping))
        if why:
            return None, why
    return index, None


def into_iteration(plan: Plan, recs: dict[str, TaskRecord], planned: dict[str, dict[str, Any] | None],
                   task_id: str, index: int, kept_note: LastChange) -> dict[str, dict[str, Any] | None]:
    """A rewind to the loop's resets (``planned``: item key -> fields kept) turned into the reopening of its
    iteration ``index`` before ``task_id``; ``kept_note``: why a kept body item of that iteration is written."""
    loop_id = plan.nodes[task_id].loop_of
    assert loop_id is not None
    loop = plan.nodes[loop_id]
    gone = body_discarded(plan, task_id)
    # Run in parallel, its other iterations are siblings, kept as they ran whatever their index; else those
    # after it are discarded (they run again if the loop goes on when it ends).
    parallel = in_parallel(loop.config)
    well = frozenset(m for m in loop.config["body"] if _finished_well(recs.get(body_key(m, loop_id, index))))
    keep = body_kept(plan, loop_id, gone, well)
    out: dict[str, dict[str, Any] | None] = {}
    for key, kept_fields in planned.items():
        where = _iteration(key, loop_id)
        if key.startswith(f"{loop_id}:"):
            continue  # a for_each's list: the reopened loop goes on over it
        if where is not None and (where[0] < index or (parallel and where[0] != index)
                                  or (where[0] == index and where[1] in keep)):
            continue  # an earlier iteration's (any other's, in parallel), or a kept body task's here (restamped)
        out[key] = kept_fields
    rec = recs.get(loop_id) or TaskRecord(loop_id)
    total = loop_total(rec.loop_state) if loop.config["type"] == "for_each" else None
    # A folded loop (iterations.py) stays folded: its iterations are its one task's items, none of their own.
    folded = is_folded(rec)
    out[loop_id] = {"loop_state": {"total": total, "reopened_at": index, **({"folded": True} if folded else {})}}
    if not folded:
        out[iteration_key(loop_id, index)] = None
    for task in loop.config["body"]:
        key = body_key(task, loop_id, index)
        if task in keep:
            out[key] = {**_as_stored(recs[key]), "last_change": kept_note}
        else:
            out.setdefault(key, None)
    return out


def discarded_keys(plan: Plan, task_id: str, index: int, flow: frozenset[str]) -> list[str]:
    """What a rewind into iteration ``index`` says it discards: the flow nodes after the loop, and the body
    tasks that run again in that iteration (their item keys)."""
    loop_id = plan.nodes[task_id].loop_of
    assert loop_id is not None
    return sorted(flow - {loop_id}) + sorted(body_key(m, loop_id, index) for m in body_discarded(plan, task_id))


def _as_stored(rec: TaskRecord) -> dict[str, Any]:
    """A record's fields as a reset writes them again (all but its key and stamp; unset ones left out)."""
    return {f.name: getattr(rec, f.name) for f in fields(rec)
            if f.name not in ("task_id", "redrive") and getattr(rec, f.name) not in (None, f.default)}


def _iteration(key: str, loop_id: str) -> tuple[int, str | None] | None:
    """(index, body task) when ``key`` belongs to an iteration of ``loop_id``: the iteration's own item
    (body task None), a body task's, or one of its instances or votes (``<role>@<task>@<loop>.<i>``)."""
    parts = key.split(":", 1)[0].split("@")
    head, dot, index = parts[-1].partition(".")
    if head != loop_id or not dot or not index.isdigit():
        return None
    return int(index), (parts[-2] if len(parts) > 1 else None)
