"""What a task sees: its run's records read for it, and the scope its expressions evaluate in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from statemachine.expressions import EvalContext, Scope, seed_of
from statemachine.loop_steps import folded_task
from statemachine.plan import Node, Plan
from statemachine.scope import build_scope, task_view

from ..clock import parse_iso
from ..ports import Clock, RunRecord, StateStore, TaskRecord
from .iterations import started_folded
from .keys import body_key, iteration_key, iteration_of


class Scopes:
    def __init__(self, store: StateStore, clock: Clock, env: Mapping[str, str]):
        self.store = store
        self.clock = clock
        self.env = dict(env)  # names reachable as ${env.NAME}: only what the deployment exposes
        self._ancestors: dict[tuple[str, str], tuple[str, ...]] = {}

    def scope_for(self, run: RunRecord, recs: Mapping[str, TaskRecord], ids: Iterable[str],
                  own: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Scope:
        tasks = {}
        for task_id in ids:
            rec = recs.get(task_id) or TaskRecord(task_id)
            tasks[task_id] = task_view(rec.status, rec.output, rec.error, rec.attempt)
        loop = (extra or {}).get("loop")
        iterator = {loop["iterator"]: loop["item"]} if loop and loop.get("iterator") else None
        return build_scope(run.inputs, run.variables, tasks, self.env, own=own, extra_roots=extra,
                           iterator=iterator)

    def load_for(self, plan: Plan, run_id: str, node: Node, key: str, ids: Iterable[str],
                 ctx: Mapping[str, Any] | None = None
                 ) -> tuple[RunRecord | None, TaskRecord, dict[str, TaskRecord], dict[str, Any] | None]:
        """The run, the task's record under ``key``, the records of ``ids`` by task id (inside a loop
        iteration a body task's siblings are that iteration's runs of them), and the loop's root.
        ``ctx``: the context its message carries (a folded iteration's item, before its claim keeps it)."""
        where = iteration_of(key) if node.loop_of else None
        keys = {d: body_key(d, where[0], where[1]) if where and plan.nodes[d].loop_of == where[0] else d
                for d in ids}
        run, recs = self.store.load(run_id, self.keys_for(plan, node, key, ids))
        by_id = {d: recs[k] for d, k in keys.items() if k in recs}
        extra = None
        if where:
            loop = plan.nodes[where[0]]
            own = recs.get(key)
            context = own.role_ctx if started_folded(own) and own is not None else ctx
            if folded_task(plan, loop) == node.id and "item" in (context or {}):
                # A folded iteration (iterations.py): its item is in its task's context, or its message's.
                extra = {"loop": _root(loop, where[1], (context or {}).get("item"))}
            else:  # the iteration's own record holds its item: a small read, whatever the list's size
                iteration_id = iteration_key(*where)
                if iteration_id not in recs:  # not in keys_for: a loop an earlier release started unfolded
                    recs.update(self.store.load(run_id, [iteration_id])[1])
                extra = {"loop": loop_root(loop, recs.get(iteration_id) or TaskRecord(iteration_id), where[1])}
        return run, recs.get(key) or TaskRecord(key), by_id, extra

    def keys_for(self, plan: Plan, node: Node, key: str, ids: Iterable[str]) -> list[str]:
        """The items ``load_for`` reads: the task's own, those of ``ids`` (inside a loop iteration, that
        iteration's), and the iteration's own record (none where the loop's iterations fold into their task)."""
        where = iteration_of(key) if node.loop_of else None
        keys = [body_key(d, where[0], where[1]) if where and plan.nodes[d].loop_of == where[0] else d for d in ids]
        own = [iteration_key(*where)] if where and folded_task(plan, plan.nodes[where[0]]) != node.id else []
        return [key, *keys, *own]

    def visible_tasks(self, plan: Plan, node: Node) -> tuple[str, ...]:
        """What ``tasks`` holds for a node: its dependencies, and for python code (whose
        references are not parsed) every ancestor, i.e. every task certainly finished."""
        if node.type != "python":
            return node.deps
        key = (plan.hash, node.id)
        cached = self._ancestors.get(key)
        if cached is None:
            seen: dict[str, None] = {}
            stack = list(node.deps)
            while stack:
                current = stack.pop()
                if current not in seen:
                    seen[current] = None
                    stack.extend(plan.nodes[current].deps)
            cached = self._ancestors[key] = tuple(seen)
        return cached

    def task_scope(self, run: RunRecord, rec: TaskRecord, recs: Mapping[str, TaskRecord], visible: Iterable[str],
                   loop_extra: dict[str, Any] | None, role_ctx: Mapping[str, object] | None = None) -> Scope:
        """The scope a task's attempt evaluates in: what it sees, its loop's item, a handler's ``error``."""
        context: Mapping[str, object] | None = rec.role_ctx or role_ctx
        extra = dict(loop_extra or {})
        if context and "error" in context:
            extra["error"] = context["error"]
        return self.scope_for(run, recs, visible, extra=extra or None)

    def eval_context(self, rec: TaskRecord | None, *where: str) -> EvalContext:
        """The ``now()`` and seed of the task's attempt (recorded at its claim, so a replay sees the same).
        Without a claim, the seed is fixed by ``where`` (a run id, a task id, ...: ``seed_of``)."""
        if rec is not None and rec.ctx_now:
            return EvalContext(now=parse_iso(rec.ctx_now), seed=rec.ctx_seed or 0)
        return EvalContext(now=self.clock.now(), seed=seed_of(*where) if where else 0)


def loop_root(loop: Node, iteration: TaskRecord, index: int) -> dict[str, Any]:
    """``loop`` as a body task's expressions see it: its index and item (kept on the iteration's record)."""
    return _root(loop, index, (iteration.role_ctx or {}).get("item"))


def _root(loop: Node, index: int, item: Any) -> dict[str, Any]:
    return {"index": index, "item": item, "iterator": loop.config["iterator"]}
