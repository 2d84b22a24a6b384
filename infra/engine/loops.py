"""Loops at run time: iterations as per-iteration items, each running the body's own small graph.

Keys: the loop's item is its id; iteration i is ``<loop>.<i>``; a body task's run in iteration i
is ``<task>@<loop>.<i>``; the items list is kept 100 to an item (``<loop>:items:<k>``). An
iteration item counts its body's last tasks with the same guarded edge counter as any task, so
a loop over 10,000 items writes 10,000 small items, never one growing item.
"""

from __future__ import annotations

from typing import Any

from statemachine.aggregation import MemberState, branch_view
from statemachine.decisions import edge_outcome
from statemachine.expressions import evaluate, truthy
from statemachine.plan import TERMINAL, Node, Plan

from ..clock import iso
from ..ports import ConditionFailed, RunRecord, TaskChange, TaskRecord
from ..tasks.base import TaskFailure, TaskResult

CHUNK = 100  # items per stored chunk of a for_each's list


def iteration_key(loop_id: str, index: int) -> str:
    return f"{loop_id}.{index}"


def chunk_key(loop_id: str, index: int) -> str:
    """Where item ``index`` of a for_each is kept: the list is stored 100 items to an item, so
    starting an iteration reads one small chunk, not the whole list."""
    return f"{loop_id}:items:{index // CHUNK}"


def body_key(task_id: str, loop_id: str, index: int) -> str:
    return f"{task_id}@{loop_id}.{index}"


def iteration_of(key: str) -> tuple[str, int] | None:
    """(loop id, index) of a body task's key, or None for a key outside any loop."""
    _, _, rest = key.partition("@")
    loop_id, _, index = rest.rpartition(".")
    return (loop_id, int(index)) if loop_id and index.isdigit() else None


class LoopsMixin:
    # ------------------------------------------------------------ starting

    def _run_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord, scope, ctx) -> None:
        config = loop.config
        limit = config["max_iterations"]
        state: dict[str, Any] = {"total": None}
        if config["type"] == "for_each" and (rec.loop_state or {}).get("total"):
            # Redriven with its completed iterations kept (redrive.py): it goes on over the list they
            # ran over, kept with them, rather than a new evaluation that could disagree with them.
            state = {"total": rec.loop_state["total"]}
            keys = [chunk_key(loop.id, start) for start in range(0, self._window(loop, state), CHUNK)]
            _, chunks = self.store.load(run.run_id, keys)
            items = [item for k in keys for item in (chunks.get(k) or TaskRecord(k)).output or []]
        elif config["type"] == "for_each":
            items = evaluate(config["items"], scope, ctx) if isinstance(config["items"], str) else config["items"]
            if not isinstance(items, list):
                raise TaskFailure("LoopItemsError", f"items must be a list, not {_type_name(items)}")
            if len(items) > limit:
                raise TaskFailure("MaxIterationsExceeded",
                                  f"{len(items)} items exceed max_iterations ({limit})")
            state = {"total": len(items)}
            for start in range(0, len(items), CHUNK):  # idempotent: each chunk is written once
                self._change(run.run_id, TaskRecord(chunk_key(loop.id, start)), TaskChange(
                    status="COMPLETED", from_status=(None, "PENDING"), set={"output": items[start:start + CHUNK]}))
        elif config["type"] == "while" and not self._loop_condition(loop, scope, ctx, 0, None):
            state["total"] = 0
        else:
            items = []
        if state["total"] == 0:
            self.succeed(plan, run, loop, rec, TaskResult([]), scope=scope, ctx=ctx)
            return
        change = TaskChange(status="WAITING", from_status=("RUNNING",), attempt=rec.attempt,
                            set={"waiting_for": "loop", "loop_state": state, "lease_until": None})
        new, applied = self._change(run.run_id, rec, change)
        if applied:
            for index in range(self._window(loop, state)):
                self._start_iteration(plan, run.run_id, loop, index, items[index] if index < len(items) else None)

    def ensure_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord) -> None:
        """A redelivery of the loop's message while it waits: start its first iterations again.
        Idempotent (an iteration is created once); a loop that moved on walks its finished
        iterations forward to where it is."""
        state = rec.loop_state or {}
        window = self._window(loop, state)
        items: list[Any] = []
        if state.get("total"):
            _, chunks = self.store.load(run.run_id, [chunk_key(loop.id, 0)])
            items = (chunks.get(chunk_key(loop.id, 0)) or TaskRecord("")).output or []
        for index in range(window):
            self._start_iteration(plan, run.run_id, loop, index, items[index] if index < len(items) else None)

    def _window(self, loop: Node, state: dict[str, Any]) -> int:
        if loop.config["parallel"] and state.get("total"):
            return min(loop.config.get("max_concurrent") or state["total"], state["total"])
        return 1

    def _start_iteration(self, plan: Plan, run_id: str, loop: Node, index: int, item: Any) -> None:
        key = iteration_key(loop.id, index)
        ctx = {"role": "iteration", "loop": loop.id, "index": index, "item": item}
        change = TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                            set={"attempt": 1, "role_ctx": ctx, "started_at": iso(self.clock.now())})
        try:
            iteration = self.store.change_task(run_id, key, change)
        except ConditionFailed as lost:
            # Started before: a redelivery sends its first tasks again (their claims dedupe). If it
            # has finished (or a redrive kept it), its last tasks are sent instead: finding themselves
            # finished, they walk the loop on from it, which its first tasks would not.
            iteration = lost.current or TaskRecord(key)
        roots = loop.config["roots"]
        starts = loop.config["last"] if iteration.status in TERMINAL else roots
        for task_id in starts:  # the item travels in the iteration's record, not in each message
            self.enqueue_exec(run_id, plan.hash, task_id, 1, key=body_key(task_id, loop.id, index),
                              ctx={k: v for k, v in ctx.items() if k != "item"}, epoch=iteration.redrive)
        if not roots:
            self._iteration_done(plan, run_id, loop, index)

    # ------------------------------------------------------------ body tasks

    def _body_propagate(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        """A body task finished in one iteration: its edges stay inside that iteration."""
        loop_id, index = iteration_of(rec.task_id)
        loop = plan.nodes[loop_id]
        ctx = {"role": "iteration", "loop": loop_id, "index": index}
        work = [(node, rec)]
        while work:
            done, done_rec = work.pop()
            if done_rec.status == "FAILED" and (done_rec.catch or {}).get("state") == "pending":
                self._start_handler(plan, run_id, done, done_rec)
                continue
            for dep_id in done.dependents:
                follow = self._apply_edge(plan, run_id, done, done_rec, plan.nodes[dep_id],
                                          key=body_key(dep_id, loop_id, index), ctx=ctx)
                if follow is not None:
                    work.append(follow)
            if done.id in loop.config["last"]:
                caught = (done_rec.catch or {}).get("state") == "caught"
                outcome = edge_outcome(done, done_rec.status, done_rec.output, loop, caught)
                _, iteration = self.store.resolve_edge(run_id, iteration_key(loop_id, index), done.id, outcome)
                if len(iteration.resolved) >= len(loop.config["last"]):
                    self._iteration_done(plan, run_id, loop, index)

    def _iteration_done(self, plan: Plan, run_id: str, loop: Node, index: int) -> None:
        body = loop.config["body"]
        keys = [iteration_key(loop.id, index)] + [body_key(m, loop.id, index) for m in body]
        run, recs = self.store.load(run_id, keys)
        iteration = recs.get(keys[0]) or TaskRecord(keys[0])
        states = {m: _state(recs.get(body_key(m, loop.id, index))) for m in body}
        view = branch_view(body, loop.config["last"], states)
        if iteration.status == "RUNNING":
            failed = view["status"] == "FAILED"
            change = TaskChange(status="FAILED" if failed else "COMPLETED", from_status=("RUNNING",),
                                set={"output": view.get("data"), "error": view.get("error"),
                                     "ended_at": iso(self.clock.now())})
            try:
                self.store.change_task(run_id, keys[0], change)
            except ConditionFailed:
                pass  # finished before: carry on from there
        tasks = {m: recs.get(body_key(m, loop.id, index)) for m in body}
        self._loop_next(plan, run, loop, index, view, {k: v for k, v in tasks.items() if v is not None})

    # ------------------------------------------------------------ what follows an iteration

    def _loop_next(self, plan: Plan, run: RunRecord, loop: Node, index: int, view: dict,
                   tasks: dict[str, TaskRecord]) -> None:
        config = loop.config
        step = config.get("max_concurrent") if config["parallel"] else 1
        following = index + step if step else None  # a parallel loop without a limit started them all
        keys = [loop.id] + ([chunk_key(loop.id, following)] if following is not None else [])
        _, recs = self.store.load(run.run_id, keys)
        rec = recs.get(loop.id) or TaskRecord(loop.id)
        if rec.status in TERMINAL:
            # Ended before (a failure, a break, the last iteration): a redelivery after that write
            # carries the loop's own propagation on, which the dead process may not have done.
            self.propagate(plan, run.run_id, loop, rec)
            return
        if rec.status != "WAITING" or rec.waiting_for != "loop":
            return
        state = rec.loop_state or {}
        chunk = recs[keys[1]].output if len(keys) > 1 and keys[1] in recs else []
        item = chunk[following % CHUNK] if following is not None and following % CHUNK < len(chunk) else None
        if view["status"] == "FAILED":
            error = view["error"]
            self.fail(plan, run, loop, rec, TaskFailure(error.get("type", "Error"),
                                                        f"iteration {index}: {error.get('message', '')}"),
                      from_status="WAITING")
            return
        _, iteration = self.store.load(run.run_id, [iteration_key(loop.id, index)])
        this = iteration.get(iteration_key(loop.id, index)) or TaskRecord("")
        scope = self.scope_for(run, tasks, list(tasks), extra={"loop": self._loop_root(loop, this, index)})
        ctx = self.eval_context(None)
        if config.get("break_on") is not None and truthy(_value(config["break_on"], scope, ctx)):
            self._finish_loop(plan, run, loop, rec, index + 1)
            return
        total = state.get("total")
        if config["parallel"] and total is not None:
            if following is not None and following < total:
                self._start_iteration(plan, run.run_id, loop, following, item)
            if self._count_finished(run.run_id, loop, index, total):
                self._finish_loop(plan, run, loop, rec, total)
            return
        if total is not None:  # for_each, one at a time
            if following < total:
                self._start_iteration(plan, run.run_id, loop, following, item)
            else:
                self._finish_loop(plan, run, loop, rec, total)
            return
        if not self._loop_condition(loop, scope, ctx, following, None):
            self._finish_loop(plan, run, loop, rec, following)
        elif following >= config["max_iterations"]:
            self.fail(plan, run, loop, rec, TaskFailure(
                "MaxIterationsExceeded", f"still looping after max_iterations ({config['max_iterations']})"),
                from_status="WAITING")
        else:
            self._start_iteration(plan, run.run_id, loop, following, None)

    def _count_finished(self, run_id: str, loop: Node, index: int, total: int) -> bool:
        """Parallel iterations finish in any order: count each once, with the guarded set counter
        edges use, 100 iterations to an item and one item over the chunks, so no item grows with
        the loop and no transaction is needed. True once every iteration has finished."""
        chunk = index // CHUNK
        _, counted = self.store.resolve_edge(run_id, f"{loop.id}:done:{chunk}", str(index), "ok")
        if len(counted.resolved) < min(CHUNK, total - chunk * CHUNK):
            return False
        _, chunks = self.store.resolve_edge(run_id, f"{loop.id}:done", str(chunk), "ok")
        return len(chunks.resolved) >= -(-total // CHUNK)

    def _finish_loop(self, plan: Plan, run: RunRecord, loop: Node, rec: TaskRecord, count: int) -> None:
        """The loop's output: each finished iteration's output, in order (read once, 100 at a time)."""
        keys = [iteration_key(loop.id, i) for i in range(count)]
        outputs: list[Any] = []
        for start in range(0, len(keys), 100):
            _, recs = self.store.load(run.run_id, keys[start:start + 100])
            outputs += [recs[k].output for k in keys[start:start + 100] if k in recs and recs[k].status == "COMPLETED"]
        self.succeed(plan, run, loop, rec, TaskResult(outputs), from_status="WAITING")

    # ------------------------------------------------------------ scope

    def _loop_root(self, loop: Node, iteration: TaskRecord, index: int) -> dict[str, Any]:
        item = (iteration.role_ctx or {}).get("item")
        return {"index": index, "item": item, "iterator": loop.config["iterator"]}

    def _loop_condition(self, loop: Node, scope, ctx, index: int, item: Any) -> bool:
        local = type(scope)(roots={**scope.roots, "loop": {"index": index, "item": item}}, bare=scope.bare)
        return truthy(_value(loop.config["condition"], local, ctx))


def _value(expression: Any, scope, ctx) -> Any:
    return evaluate(expression, scope, ctx) if isinstance(expression, str) else expression


def _state(rec: TaskRecord | None) -> MemberState:
    if rec is None:
        return MemberState("PENDING")
    return MemberState(rec.status, rec.output, rec.error, (rec.catch or {}).get("state") == "caught",
                       rec.ended_at or "")


def _type_name(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


__all__ = ["LoopsMixin", "TERMINAL", "iteration_key", "body_key", "iteration_of"]
