"""Loops at run time: iterations as per-iteration items, each running the body's own small graph.

An iteration item counts its body's last tasks with the same guarded edge counter as any task
(propagate.py walks a body task's edges inside its iteration), so a loop over 10,000 items
writes 10,000 small items, never one growing item (keys.py names them). A for_each whose body is
one task has no iteration items: each iteration is kept in its task's item (iterations.py).
"""

from __future__ import annotations

from typing import Any

from statemachine.aggregation import branch_view
from statemachine.expressions import EvalContext, Scope, evaluate, truthy
from statemachine.loop_steps import after_iteration, folded_task, following_index, in_parallel
from statemachine.plan import Node, Plan
from statemachine.state import loop_total, reopened_at
from statemachine.status import TASK_ENDED, TaskStatus, WaitingFor

from ..clock import iso
from ..ports import Clock, ConditionFailed, RunRecord, StateStore, TaskChange, TaskRecord
from ..tasks.base import TaskFailure, TaskResult
from .blocks import member_state
from .iterations import folded_iteration, is_folded, started_folded
from .keys import CHUNK, body_key, chunk_key, iteration_key
from .messenger import Messenger
from .outcomes import Outcomes
from .propagate import Propagation
from .reading import Scopes, loop_root


class Loops:
    def __init__(self, store: StateStore, clock: Clock, messenger: Messenger, scopes: Scopes, outcomes: Outcomes,
                 propagation: Propagation):
        self.store = store
        self.clock = clock
        self.messenger = messenger
        self.scopes = scopes
        self.outcomes = outcomes
        self.propagation = propagation

    # ------------------------------------------------------------ starting

    def run_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord, scope: Scope,
                 ctx: EvalContext) -> None:
        at = reopened_at(rec.loop_state)
        if at is not None:
            self._reopen(plan, run, loop, rec, at)
            return
        config = loop.config
        limit = config["max_iterations"]
        state: dict[str, Any] = {"total": None}
        items: list[Any] = []
        if config["type"] == "for_each" and loop_total(rec.loop_state):
            # Redriven with its completed iterations kept (redrive.py): it goes on over the list they
            # ran over, kept with them, rather than a new evaluation that could disagree with them; and
            # its iterations kept where they were (folded or not).
            state = {"total": loop_total(rec.loop_state), **({"folded": True} if is_folded(rec) else {})}
            items = self._items(run.run_id, loop, state["total"])
        elif config["type"] == "for_each":
            found = evaluate(config["items"], scope, ctx) if isinstance(config["items"], str) else config["items"]
            if not isinstance(found, list):
                raise TaskFailure("LoopItemsError", f"items must be a list, not {_type_name(found)}")
            if len(found) > limit:
                raise TaskFailure("MaxIterationsExceeded",
                                  f"{len(found)} items exceed max_iterations ({limit})")
            items = found
            state = {"total": len(items), **({"folded": True} if folded_task(plan, loop) else {})}
            for start in range(0, len(items), CHUNK):  # each chunk is written once: a data item, not a task
                try:
                    self.store.change_task(run.run_id, chunk_key(loop.id, start), TaskChange(
                        status=TaskStatus.COMPLETED, from_status=(None, TaskStatus.PENDING),
                        set={"output": items[start:start + CHUNK]}))
                except ConditionFailed:
                    pass  # written by a delivery before this one, with the same items
        elif config["type"] == "while" and not _loop_condition(loop, scope, ctx, 0, None):
            state["total"] = 0
        if state["total"] == 0:
            self.outcomes.succeed(plan, run, loop, rec, TaskResult([]), scope=scope, ctx=ctx)
            return
        change = TaskChange(status=TaskStatus.WAITING, from_status=(TaskStatus.RUNNING,), attempt=rec.attempt,
                            set={"waiting_for": WaitingFor.LOOP, "loop_state": state, "lease_until": None})
        what = f"{state['total']} items" if state["total"] is not None else "its condition"
        looping, applied = self.outcomes.change(run.run_id, rec, change, f"iterating over {what}")
        if applied:  # ``looping``: the loop as written (its epoch, and whether its iterations fold)
            for index in range(_window(loop, state["total"])):
                self._start_iteration(plan, run.run_id, loop, looping, index,
                                      items[index] if index < len(items) else None)

    def ensure_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord) -> None:
        """A redelivery of the loop's message while it waits: start its first iterations again.
        Idempotent (an iteration is created once); a loop that moved on walks its finished
        iterations forward to where it is."""
        at = reopened_at(rec.loop_state)
        if at is not None:
            self._reopen_iteration(plan, run.run_id, loop, rec, at)
            return
        total = loop_total(rec.loop_state)
        items = self._items(run.run_id, loop, total) if total else []
        for index in range(_window(loop, total)):
            self._start_iteration(plan, run.run_id, loop, rec, index, items[index] if index < len(items) else None)

    def _reopen(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord, index: int) -> None:
        """A rewind into iteration ``index`` of the body reopened the loop (loop_rewind.py): it waits on that
        iteration at once. Nothing is evaluated again: the iteration ran, so what let it start held (a while's
        condition, a for_each's item, read from the list the loop kept)."""
        change = TaskChange(status=TaskStatus.WAITING, from_status=(TaskStatus.RUNNING,), attempt=rec.attempt,
                            set={"waiting_for": WaitingFor.LOOP, "loop_state": rec.loop_state, "lease_until": None})
        _, applied = self.outcomes.change(run.run_id, rec, change, f"reopened at iteration {index} by a rewind")
        if applied:
            self._reopen_iteration(plan, run.run_id, loop, rec, index)

    def _reopen_iteration(self, plan: Plan, run_id: str, loop: Node, looping: TaskRecord, index: int) -> None:
        """Start the reopened iteration (again: idempotent), then apply the edges from its kept body tasks into
        those that run again, as a redrive's restart does in the flow: its first tasks alone would not reach a
        reset task whose dependencies were kept (each edge counts once, however often this is repeated)."""
        item = None
        if loop.config["type"] == "for_each":
            _, chunks = self.store.load(run_id, [chunk_key(loop.id, index)])
            chunk = (chunks.get(chunk_key(loop.id, index)) or TaskRecord("")).output or []
            item = chunk[index % CHUNK] if index % CHUNK < len(chunk) else None
        self._start_iteration(plan, run_id, loop, looping, index, item)
        keys = {task_id: body_key(task_id, loop.id, index) for task_id in loop.config["body"]}
        _, recs = self.store.load(run_id, [iteration_key(loop.id, index), *keys.values()])
        if (recs.get(iteration_key(loop.id, index)) or TaskRecord("")).status != TaskStatus.RUNNING:
            return  # ended since: it walked the loop on (a redelivery)
        ctx = {"role": "iteration", "loop": loop.id, "index": index}
        for task_id, key in keys.items():
            if (recs.get(key) or TaskRecord(key)).status != TaskStatus.PENDING:
                continue
            for dep in plan.nodes[task_id].deps:
                done = recs.get(keys.get(dep, ""))
                if done is not None and done.status in TASK_ENDED:
                    follow = self.propagation.apply_edge(plan, run_id, plan.nodes[dep], done, plan.nodes[task_id],
                                                         key=key, ctx=ctx, fold=False)
                    if follow is not None:  # skipped without running: it propagates in turn
                        self.propagation.propagate(plan, run_id, *follow)

    def _items(self, run_id: str, loop: Node, total: int) -> list[Any]:
        """The items of a for_each's first iterations (its first window), from the chunks that hold them."""
        keys = [chunk_key(loop.id, start) for start in range(0, _window(loop, total), CHUNK)]
        _, chunks = self.store.load(run_id, keys)
        return [item for k in keys for item in (chunks.get(k) or TaskRecord(k)).output or []]

    def _start_iteration(self, plan: Plan, run_id: str, loop: Node, looping: TaskRecord, index: int,
                         item: Any) -> None:
        """Start iteration ``index`` of ``loop`` (``looping``: the loop's item, as it waits for it)."""
        ctx = {"role": "iteration", "loop": loop.id, "index": index, "item": item}
        task_id = folded_task(plan, loop) if is_folded(looping) else None
        if task_id is not None:
            # Folded (iterations.py): nothing is written here. Its task's claim starts the iteration and
            # keeps its item, so the item travels in the message. Sent again, it is claimed once (the
            # claim is conditional); ended, the task walks the loop on from it (its delivery propagates
            # it). Its epoch is the loop's: a redrive stamps both with it. Carried on, it is presumed to
            # have no item (Exec.unwritten: a wrong presumption makes its claim fail, then it is read).
            self.messenger.ready(run_id, plan.hash, task_id, key=body_key(task_id, loop.id, index), ctx=ctx,
                                 epoch=looping.redrive, unwritten=True)
            return
        key = iteration_key(loop.id, index)
        change = TaskChange(status=TaskStatus.RUNNING, from_status=(None, TaskStatus.PENDING),
                            set={"attempt": 1, "role_ctx": ctx, "started_at": iso(self.clock.now())})
        # Lost: started before, and a redelivery sends its first tasks again (their claims dedupe). If
        # it has finished (or a redrive kept it), its last tasks are sent instead: finding themselves
        # finished, they walk the loop on from it, which its first tasks would not.
        iteration, created = self.outcomes.change(run_id, TaskRecord(key), change, f"iteration {index} of {loop.id}")
        roots = loop.config["roots"]
        starts = loop.config["last"] if iteration.status in TASK_ENDED else roots
        # The item travels in the iteration's record, not in each message. Ready: carried on in this
        # invocation when it is a worker's (carry_on.py), the first one; a redelivery of the message
        # that got here starts them again, as above, so what it carried needs no mark of its own.
        # Created by this write, the iteration's body has no items yet: its first tasks, carried on,
        # load without a read (Exec.unwritten; a redrive's reset items make their claims fall back).
        for task_id in starts:
            self.messenger.ready(run_id, plan.hash, task_id, key=body_key(task_id, loop.id, index),
                                 ctx={k: v for k, v in ctx.items() if k != "item"}, epoch=iteration.redrive,
                                 unwritten=created)
        if not roots:
            self.iteration_done(plan, run_id, loop, index)

    # ------------------------------------------------------------ what follows an iteration

    def iteration_done(self, plan: Plan, run_id: str, loop: Node, index: int) -> None:
        body = loop.config["body"]
        task_id = folded_task(plan, loop)
        if task_id is not None:  # perhaps folded: its task's item says (read without its iteration's)
            run, recs = self.store.load(run_id, [body_key(task_id, loop.id, index)])
            if run is None:
                return
            if started_folded(recs.get(body_key(task_id, loop.id, index))):
                # Its task's end was the iteration's end: nothing to write, the loop goes on from it.
                states = {task_id: member_state(recs.get(body_key(task_id, loop.id, index)))}
                view = branch_view(body, loop.config["last"], states)
                tasks = {m: recs[body_key(m, loop.id, index)] for m in body if body_key(m, loop.id, index) in recs}
                self._loop_next(plan, run, loop, index, view, tasks)
                return
        keys = [iteration_key(loop.id, index)] + [body_key(m, loop.id, index) for m in body]
        run, recs = self.store.load(run_id, keys)
        if run is None:
            return
        iteration = recs.get(keys[0]) or TaskRecord(keys[0])
        states = {m: member_state(recs.get(body_key(m, loop.id, index))) for m in body}
        view = branch_view(body, loop.config["last"], states)
        if iteration.status == TaskStatus.RUNNING:
            failed = view["status"] == TaskStatus.FAILED
            change = TaskChange(status=TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
                                from_status=(TaskStatus.RUNNING,),
                                set={"output": view.get("data"), "error": view.get("error"),
                                     "ended_at": iso(self.clock.now())})
            # lost: it finished before, carry on from there
            self.outcomes.change(run_id, iteration, change, f"its body {view['status'].lower()}")
        tasks = {m: recs[body_key(m, loop.id, index)] for m in body if body_key(m, loop.id, index) in recs}
        self._loop_next(plan, run, loop, index, view, tasks)

    def _loop_next(self, plan: Plan, run: RunRecord, loop: Node, index: int, view: dict[str, Any],
                   tasks: dict[str, TaskRecord]) -> None:
        config = loop.config
        following = following_index(config, index)
        # Whether what follows reads the run's variables (a while or do_while condition, a break_on): only
        # then can a redelivery decide otherwise, and the next iteration's item is read to tell (below). A
        # for_each's next step depends on its index and items alone: decided again, it starts the same
        # iteration (idempotent), without that read.
        on_variables = config["type"] != "for_each" or config.get("break_on") is not None
        # The item the next iteration starts with: a for_each's, from the chunk that holds it, read with the
        # loop when it is this iteration's chunk (there, certainly). In the next chunk, it is read only once
        # the loop's count says it exists: the last iterations of a list of 100 would each read a chunk
        # that is not there.
        chunk_id = chunk_key(loop.id, following) if following is not None and config["type"] == "for_each" else None
        sure = chunk_id is not None and following is not None and following // CHUNK == index // CHUNK
        next_id = iteration_key(loop.id, following) if following is not None and on_variables else None
        keys = [loop.id, *([chunk_id] if sure and chunk_id else []), *([next_id] if next_id else [])]
        _, recs = self.store.load(run.run_id, keys)
        rec = recs.get(loop.id) or TaskRecord(loop.id)
        if rec.status in TASK_ENDED:
            # Ended before (a failure, a break, the last iteration): a redelivery after that write
            # carries the loop's own propagation on, which the dead process may not have done.
            self.propagation.propagate(plan, run.run_id, loop, rec)
            return
        if rec.status != TaskStatus.WAITING or rec.waiting_for != WaitingFor.LOOP:
            return
        if chunk_id is not None and not sure and following is not None \
                and following < (loop_total(rec.loop_state) or 0):
            recs.update(self.store.load(run.run_id, [chunk_id])[1])
        chunk = recs[chunk_id].output if chunk_id is not None and chunk_id in recs else []
        item = chunk[following % CHUNK] if following is not None and following % CHUNK < len(chunk or []) else None
        # Reopened here by a rewind into its body, a parallel loop's other iterations were kept as they ran: this
        # iteration's end is the loop's (after_iteration), and the one ``following`` names ended long ago.
        reopened = in_parallel(config) and reopened_at(rec.loop_state) == index
        if following is not None and on_variables and not reopened and _started(recs.get(next_id or "")):
            # Decided before: this is a redelivery, and the loop went on (only this iteration's end starts
            # that one). Its conditions are not evaluated again: the variables they read may have moved
            # on with the later iterations' exports, and would end the loop early. Started again
            # (idempotent), that iteration walks the loop on from where it is.
            self._start_iteration(plan, run.run_id, loop, rec, following, item)
            return

        read: list[Scope] = []

        def scope() -> Scope:  # the iteration's item is read once, and only if a condition needs it
            if not read:
                _, iteration = self.store.load(run.run_id, [iteration_key(loop.id, index)])
                this = iteration.get(iteration_key(loop.id, index)) or TaskRecord("")
                read.append(self.scopes.scope_for(run, tasks, list(tasks),
                                                  extra={"loop": loop_root(loop, this, index)}))
            return read[0]

        ctx = self.scopes.eval_context(None, run.run_id, loop.id, str(index), str(rec.redrive or 0))
        try:
            step = after_iteration(
                config, loop_total(rec.loop_state), index, view,
                break_hit=lambda: truthy(_value(config["break_on"], scope(), ctx)),
                goes_on=lambda i: _loop_condition(loop, scope(), ctx, i, None), reopened=reopened)
        except ValueError as exc:
            raise LookupError(f"loop '{loop.id}': {exc}") from exc
        if step.fail is not None:
            self.outcomes.fail(plan, run, loop, rec, TaskFailure(*step.fail), from_status=TaskStatus.WAITING)
            return
        if step.start is not None:
            self._start_iteration(plan, run.run_id, loop, rec, step.start, item)
        if step.finish_after is not None and (
                not step.count or self._count_finished(plan, run.run_id, loop, rec, step.finish_after)):
            self._finish_loop(plan, run, loop, rec, step.finish_after)

    def _count_finished(self, plan: Plan, run_id: str, loop: Node, rec: TaskRecord, total: int) -> bool:
        """Parallel iterations finish in any order; True once every one has. Each iteration's own end
        was written before this read, which sees every write completed before it (strongly
        consistent): of iterations ending at once, the one whose end was written last sees all the
        others' ends, so at least one finds them all, and the loop's end is conditional (one applies).
        Only iterations with none left to start ask (the last window of the loop), so this reads the
        loop's iteration items a window's worth of times, instead of a counter write per iteration.
        A folded loop's iterations are its task's items (``<task>@<loop>.<i>``), counted the same way."""
        task_id = folded_task(plan, loop) if is_folded(rec) else None
        return self.store.ended_iterations(run_id, f"{task_id}@{loop.id}" if task_id else loop.id) >= total

    def _finish_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord, count: int) -> None:
        """The loop's output: each finished iteration's output, in order (read once, 100 at a time)."""
        task_id = folded_task(plan, loop) if is_folded(rec) else None
        keys = [body_key(task_id, loop.id, i) if task_id else iteration_key(loop.id, i) for i in range(count)]
        outputs: list[Any] = []
        for start in range(0, len(keys), 100):
            _, recs = self.store.load(run.run_id, keys[start:start + 100])
            ended = [folded_iteration(iteration_key(loop.id, start + n), recs.get(k)) if task_id else recs.get(k)
                     for n, k in enumerate(keys[start:start + 100])]
            outputs += [it.output for it in ended if it is not None and it.status == TaskStatus.COMPLETED]
        self.outcomes.succeed(plan, run, loop, rec, TaskResult(outputs), from_status=TaskStatus.WAITING)


def _started(iteration: TaskRecord | None) -> bool:
    """Whether an iteration was started: by its predecessor's end, which decided the loop goes on. (A
    redrive resets an iteration to a PENDING item; one it keeps is COMPLETED, as is the predecessor
    that started it, since a failed iteration ends its loop instead.)"""
    return iteration is not None and iteration.status not in (None, TaskStatus.PENDING)


def _window(loop: Node, total: int | None) -> int:
    """How many iterations run at once."""
    if loop.config["parallel"] and total:
        return min(loop.config.get("max_concurrent") or total, total)
    return 1


def _loop_condition(loop: Node, scope: Scope, ctx: EvalContext, index: int, item: Any) -> bool:
    local = Scope(roots={**scope.roots, "loop": {"index": index, "item": item}}, bare=scope.bare)
    return truthy(_value(loop.config["condition"], local, ctx))


def _value(expression: Any, scope: Scope, ctx: EvalContext) -> Any:
    return evaluate(expression, scope, ctx) if isinstance(expression, str) else expression


def _type_name(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
