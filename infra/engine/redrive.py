"""Redrive: a FAILED run resumes from its failed tasks, keeping what completed (as Step Functions'
RedriveExecution does). `POST /runs/{id}/redrive`, `loopline redrive RUN`.

The API only queues ``{"k": "redrive", "run", "epoch": n}`` (n = the run's redrive count + 1), then
answers 202; the worker does the rest in three steps, each safe to repeat (a duplicate message, or a
redelivery after a crash anywhere, carries on where the last delivery stopped):

1. **Reset**, while the run is still FAILED (nothing moves in an ended run): every item that is not
   kept is replaced by a PENDING item stamped with the epoch (``redrive = n``). Each reset is one
   conditional write, applied only while the run is FAILED with n - 1 redrives and the item's stamp
   is below n, so no reset can land once the run has reopened. A redelivery classifies the same way
   (a reset only turns a not-kept item into a PENDING one, which is not kept either).
2. **Reopen**: FAILED with n - 1 redrives -> RUNNING with n; the failure, the end steps, the outputs
   cleared, and the sink counter set to the sinks not kept.
3. **Restart**: the edges from finished dependencies into the reset tasks are applied again (the usual
   guarded ``Propagation.apply_edge``: an edge counts once, however often it is replayed) and the reset tasks
   without dependencies are queued; from there the run goes on as any run, and ends through the usual
   end steps (its ``finally`` tasks run again). When only end steps had failed, it goes to them at once.

What is kept: a flow task that ended COMPLETED, SKIPPED, or FAILED with its failure caught, when its
dependencies are all kept (so nothing kept was decided on a result that will change); every task of a
kept parallel block, whatever its own outcome (the block judged them already). A for_each loop that is
not kept but whose dependencies are keeps its COMPLETED iterations and its list: it goes on over the
same list, running the other iterations again (while/do_while loops run again from the start: their
conditions read state that has moved on). Everything else runs again, attempts counted from 1; the
variables stay as they are. A sub-workflow task that runs again starts a new child run.

Messages from before the reset (a late retry, a timer, a duplicate) carry a lower epoch than the item
they are about (``keys.is_stale``) and are dropped, and the links of a reset wait stop working.

Refused (409): a run that is not FAILED; a run whose compensation ran (its completed work was undone,
so there is nothing to resume on); a sub-workflow's run (redrive its parent, which starts a new child).
"""

from __future__ import annotations

from typing import Any

from statemachine.loop_steps import folded_task, following_index
from statemachine.messages import Redrive
from statemachine.plan import Node, Plan
from statemachine.state import catch_step, loop_total
from statemachine.status import RUN_ENDED, TASK_ENDED, RunStatus, TaskStatus

from ..clock import iso
from ..ports import Clock, RunRecord, StateStore, TaskRecord
from .iterations import folded_iteration, is_folded
from .journal import Journal
from .keys import body_key
from .messenger import Messenger
from .plans import Plans
from .propagate import Propagation
from .run_end import RunEnd
from .run_start import RunStart


def refusal(run: RunRecord) -> str | None:
    """Why ``run`` cannot be redriven, or None."""
    if run.status != RunStatus.FAILED:
        return f"it is {run.status}; only a FAILED run can be redriven"
    if run.end_comps:
        return "its compensation ran: the work it completed was undone"
    if run.parent:
        return f"it is a sub-workflow's run: redrive its parent run '{run.parent.get('run')}'"
    if run.rewinding is not None:
        return f"a rewind to '{run.rewind_to}' is under way"
    return None


class Redriving:
    def __init__(self, store: StateStore, clock: Clock, plans: Plans, messenger: Messenger, run_start: RunStart,
                 run_end: RunEnd, propagation: Propagation, journal: Journal):
        self.store = store
        self.journal = journal
        self.clock = clock
        self.plans = plans
        self.messenger = messenger
        self.run_start = run_start
        self.run_end = run_end
        self.propagation = propagation

    def redrive_run(self, run_id: str) -> dict[str, Any] | None:
        """Queue a redrive (the worker does it). None: no such run; ``changed`` False: refused."""
        run = self.store.get_run(run_id)
        if run is None:
            return None
        why = refusal(run)
        if why:
            return {"run_id": run_id, "status": run.status, "changed": False, "reason": why}
        # The message is all this writes: asked twice before the worker gets to it, both carry
        # the same epoch and make one redrive.
        epoch = run.redrives + 1
        self.messenger.send(Redrive(run_id, epoch))
        return {"run_id": run_id, "status": run.status, "changed": True, "redrive": epoch}

    def on_redrive(self, msg: Redrive) -> None:
        epoch = msg.epoch
        run = self.store.get_run(msg.run)
        if run is None:
            return
        plan = self.plans.get(run.plan_hash)
        if run.redrives == epoch - 1:
            if refusal(run):
                return
            recs = self.store.list_tasks(run.run_id)  # once per redrive: an operator's action
            kept = kept_nodes(plan, recs)
            note = self.journal.note(f"reset by redrive {epoch}")
            for key, keep in resets(plan, recs, kept).items():
                # A reset item says why in the run's history; one that never existed has nothing to say.
                self.store.reset_task(run.run_id, key, epoch, {**(keep or {}), "last_change": note} if key in recs
                                      else keep)
            sinks = [s for s in plan.sinks if s in kept]
            why = f"redrive {epoch}: {len(kept)} tasks kept"
            reopened, run = self.store.reopen_run(run.run_id, epoch, sinks, len(plan.sinks) - len(sinks),
                                                  iso(self.clock.now()), note=self.journal.note(why))
            if reopened and run is not None:
                self.journal.run(run.run_id, run.status, RunStatus.FAILED, why)
        if run is None or run.redrives != epoch or run.status in RUN_ENDED:
            return  # another epoch's message, or this epoch has ended already
        self.restart(plan, run, epoch)

    def restart(self, plan: Plan, run: RunRecord, epoch: int) -> None:
        """Step 3 (a rewind's too): every call is a no-op when repeated, so a redelivery simply makes them all again."""
        recs = self.store.list_tasks(run.run_id)
        self.run_start.schedule_run_timeout(plan, run)
        if run.sinks_remaining <= 0:
            self.run_end.finalize(plan, run)  # the flow was kept whole: only end steps had failed
            return
        for node in plan.nodes.values():
            rec = recs.get(node.id)
            if node.role != "flow" or node.loop_of is not None or rec is None or rec.redrive != epoch:
                continue
            self.propagation.restart(plan, run.run_id, node, recs, epoch)


# ---------------------------------------------------------------- what is kept (pure)


def _finished_well(rec: TaskRecord | None) -> bool:
    if rec is None:
        return False
    caught = rec.status == TaskStatus.FAILED and catch_step(rec.catch) == "caught"
    return rec.status in (TaskStatus.COMPLETED, TaskStatus.SKIPPED) or caught


def kept_nodes(plan: Plan, recs: dict[str, TaskRecord]) -> set[str]:
    """The flow nodes (outside loop bodies) a redrive keeps as they are."""
    kept: set[str] = set()
    for node in plan.nodes.values():  # dependencies come first
        if node.role != "flow" or node.loop_of is not None:
            continue
        if node.kind == "parallel":
            # A block's members come before it: the block decides for them all, on what they needed
            # from outside the block.
            members = [m for ids in node.config["branches"].values() for m in ids]
            outside = {d for m in members for d in plan.nodes[m].deps if d not in members}
            if _finished_well(recs.get(node.id)) and outside <= kept:
                kept.update([node.id, *members])
        elif _finished_well(recs.get(node.id)) and all(d in kept for d in node.deps):
            kept.add(node.id)
    return kept


def loop_modes(plan: Plan, recs: dict[str, TaskRecord], kept: set[str],
               restart: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """Per loop: None (kept whole), "resume" (keep its list and COMPLETED iterations) or "restart" (always
    for the loops in ``restart``: a rewind's)."""
    modes: dict[str, str | None] = {}
    for node in plan.nodes.values():
        if node.kind != "loop":
            continue
        rec = recs.get(node.id)
        if node.id in kept:
            modes[node.id] = None
        elif (node.id not in restart and node.config["type"] == "for_each" and rec is not None
              and loop_total(rec.loop_state) and all(d in kept for d in node.deps)):
            modes[node.id] = "resume"
        else:
            modes[node.id] = "restart"
    return modes


def resets(plan: Plan, recs: dict[str, TaskRecord], kept: set[str],
           restart: frozenset[str] = frozenset()) -> dict[str, dict[str, Any] | None]:
    """Item key -> the fields its PENDING item keeps (None: none), for every item to reset. Flow nodes
    not kept are reset even when they have no item yet, so that every one carries the epoch."""
    modes = loop_modes(plan, recs, kept, restart)
    out: dict[str, dict[str, Any] | None] = {}
    for node in plan.nodes.values():
        if node.role == "flow" and node.loop_of is None and node.id not in kept:
            total = loop_total(recs[node.id].loop_state) if modes.get(node.id) == "resume" else None
            folded = {"folded": True} if total and is_folded(recs[node.id]) else {}  # its kept iterations' way
            out[node.id] = {"loop_state": {"total": total, **folded}} if total else None
    for key in recs:
        if key not in out and _doomed(plan, key, recs, kept, modes):
            out[key] = None
    # Stamped too, existing or not, so that a message sent for them before the run failed and still
    # on its way is stale: the handler instance of a reset failure, the body of a reset iteration.
    for key in list(out):
        catch = recs[key].catch if key in recs else None
        handler = catch["handler"] if catch else None
        if handler:
            out.setdefault(handler, None)
        loop_id, dot, index = key.partition(".")
        if dot and index.isdigit() and loop_id in modes:
            for task_id in plan.nodes[loop_id].config["body"]:
                out.setdefault(body_key(task_id, loop_id, int(index)), None)
    for loop_id, mode in modes.items():
        if mode is not None:
            out.update(dict.fromkeys(_folded_in_flight(plan, plan.nodes[loop_id], recs), None))
    return out


def _folded_in_flight(plan: Plan, loop: Node, recs: dict[str, TaskRecord]) -> list[str]:
    """A folded loop's iterations (iterations.py) that may have been started with no item yet (their
    task's message on its way, its claim not written): the first window, and the one each iteration
    that ended well started. Stamped with the epoch, as an iteration item was from its start, so that such a
    message is stale instead of starting an iteration of before the reset."""
    task_id = folded_task(plan, loop)
    looping = recs.get(loop.id)
    total = loop_total(looping.loop_state if looping is not None else None) or 0
    if task_id is None or not is_folded(looping):
        return []
    window = min(loop.config.get("max_concurrent") or total, total) if loop.config["parallel"] else 1
    started = set(range(min(window, total)))
    for index in range(total):
        rec = recs.get(body_key(task_id, loop.id, index))
        following = following_index(loop.config, index)
        # A failed iteration starts none: its loop fails.
        if rec is not None and rec.status in TASK_ENDED and rec.status != TaskStatus.FAILED \
                and following is not None and following < total:
            started.add(following)
    return [key for key in (body_key(task_id, loop.id, i) for i in sorted(started)) if key not in recs]


def _doomed(plan: Plan, key: str, recs: dict[str, TaskRecord], kept: set[str], modes: dict) -> bool:
    """Whether the item ``key`` (any kind the engine writes) is reset."""
    if key.endswith(":refused") or ":refused:" in key:
        return False  # the record of a task's refused links (older releases: one item each): history, kept
    if ":vote:" in key:
        return _doomed(plan, key.split(":vote:", 1)[0], recs, kept, modes)  # votes go with their request
    head, at, rest = key.partition("@")
    if at:
        # `<body task>@<loop>.<i>` goes with its iteration; `<role task>@<task>` (a handler's
        # or a compensation's instance) with the task it was for.
        return head in plan.nodes and _doomed(plan, rest, recs, kept, modes)
    loop_id, colon, _ = key.partition(":")
    if colon:  # a loop's list chunk (`<loop>:items:<k>`) or iteration counter (`<loop>:done...`)
        return modes.get(loop_id) == "restart"
    loop_id, dot, index = key.partition(".")
    if dot and index.isdigit():  # an iteration
        mode = modes.get(loop_id)
        ended = (recs.get(key) or _folded(plan, loop_id, int(index), recs) or TaskRecord(key)).status
        return mode == "restart" or (mode == "resume" and ended != TaskStatus.COMPLETED)
    node = plan.nodes.get(key)
    if node is None:
        return False
    if node.role == "finally":
        return True  # the run ends again: its finally tasks run again
    return node.role == "flow" and key not in kept


def _folded(plan: Plan, loop_id: str, index: int, recs: dict[str, TaskRecord]) -> TaskRecord | None:
    """Iteration ``index`` of a loop whose iterations are folded into their task (iterations.py), if it is."""
    loop = plan.nodes.get(loop_id)
    task_id = folded_task(plan, loop) if loop is not None and loop.kind == "loop" else None
    if task_id is None or not is_folded(recs.get(loop_id)):
        return None
    return folded_iteration(f"{loop_id}.{index}", recs.get(body_key(task_id, loop_id, index)))
