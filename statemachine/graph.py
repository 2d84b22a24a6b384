"""How control-flow blocks become graph edges, and the graph algorithms the compiler uses.

Parallel blocks and loops are wired after the checks: a block's members, its own
dependencies and its aggregation node are rearranged so the engine only ever sees
nodes and edges (and, for a loop, a body that runs once per iteration).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

from statemachine import dsl
from statemachine.diagnostics import Diagnostic, WorkflowError
from statemachine.plan import Node

Members = dict[str, dict[str, list[str]]]


def block_members(entries: list[tuple[str | None, tuple[str, str] | None]]) -> Members:
    """block id -> label ("then", "tasks", a branch name) -> member ids, in file order."""
    members: Members = {}
    for entry_id, block in entries:
        if block is not None and entry_id is not None:
            members.setdefault(block[0], {}).setdefault(block[1], []).append(entry_id)
    return members


def task_roles(wf: dsl.Workflow, compensations: list, tools: Iterable[str] = ()) -> dict[str, str]:
    """Tasks that run only in a role (dsl.md; an llm task's tools: statemachine/tool_tasks.py), by id."""
    roles = {name: "tool" for name in tools}
    roles.update({c.handler: "handler" for c in wf.error_handling.catch})
    roles.update({name: "finally" for name in wf.error_handling.finally_})
    roles.update({name: "compensation" for name in compensations if isinstance(name, str)})
    return roles


def wire_loops(wf: dsl.Workflow, nodes: dict[str, Node], members: Members, filename: str) -> dict[str, Node]:
    """A loop's body tasks run once per iteration: they leave the flow graph, and whatever they
    need from outside the loop becomes a dependency of the loop itself."""
    for loop in wf.control_flow.loops:
        body = members.get(loop.id, {}).get("tasks", [])
        inside = set(body)
        outside: set[str] = set()
        for m in body:
            deps = set(nodes[m].deps) - {loop.id}
            outside |= deps - inside
            nodes[m] = nodes[m].model_copy(update={"deps": tuple(sorted(deps)), "loop_of": loop.id})
        inner = {m: [d for d in nodes[m].deps if d in inside] for m in body}
        fed = {d for ds in inner.values() for d in ds}
        config = {**nodes[loop.id].config, "body": body,
                  "roots": [m for m in body if not inner[m]], "last": [m for m in body if m not in fed]}
        loop_deps = tuple(sorted(set(nodes[loop.id].deps) | outside))
        nodes[loop.id] = nodes[loop.id].model_copy(update={"deps": loop_deps, "config": config})
    wrong = [Diagnostic(filename, node.line, node.col,
                        f"task '{node.id}' depends on '{dep}', which runs inside loop '{nodes[dep].loop_of}': "
                        f"depend on the loop")
             for node in nodes.values() for dep in node.deps
             if nodes[dep].loop_of is not None and nodes[dep].loop_of != node.loop_of]
    if wrong:
        raise WorkflowError(wrong)
    return nodes

def wire_parallel_blocks(wf: dsl.Workflow, nodes: dict[str, Node], members: Members) -> dict[str, Node]:
    """A parallel block becomes its branches' tasks plus one node that aggregates them.

    The block's own dependencies move down to its members (they "wait for the block to
    start"), and the block's node waits for each branch's last tasks, so `depends_on: [block]`
    waits for the whole block. max_concurrent adds ordering-only edges: branch k starts after
    branch k - max_concurrent has finished.
    """
    default_limit = wf.config.parallelism.max_concurrent if wf.config.parallelism else None
    for block in wf.control_flow.parallel:
        own = set(nodes[block.id].deps)
        names = [branch.name for branch in block.branches]
        branch_ids = members.get(block.id, {})
        last: dict[str, list[str]] = {}
        for name in names:
            ids = branch_ids.get(name, [])
            inner = {d for m in ids for d in nodes[m].deps if d in ids}
            last[name] = [m for m in ids if m not in inner]
            for m in ids:
                deps = (set(nodes[m].deps) - {block.id}) | own
                # a block in a condition's branch: its tasks are in that branch too (skipped with it)
                nodes[m] = nodes[m].model_copy(update={"deps": tuple(sorted(deps)), "parallel_of": block.id,
                                                       "branch_of": nodes[block.id].branch_of})
        limit = block.max_concurrent or default_limit
        if limit:
            for k, name in enumerate(names[limit:], start=limit):
                earlier = last[names[k - limit]]
                for m in branch_ids.get(name, []):
                    if not set(nodes[m].deps) & set(branch_ids.get(name, [])):  # the branch's first tasks
                        nodes[m] = nodes[m].model_copy(update={
                            "deps": tuple(sorted(set(nodes[m].deps) | set(earlier))),
                            "order_deps": tuple(sorted(earlier))})
        block_deps = {d for ids in last.values() for d in ids} | (own - set(block.depends_on))
        config = {**nodes[block.id].config, "branches": {n: branch_ids.get(n, []) for n in names}, "last": last}
        nodes[block.id] = nodes[block.id].model_copy(update={"deps": tuple(sorted(block_deps)),
                                                             "config": config})
    return nodes


def cycle_through(start: str, graph: dict[str, tuple[str, ...]], members: set[str]) -> list[str] | None:
    """Shortest dependency path start -> ... -> start through ``members`` (BFS), if any."""
    parent: dict[str, str] = {}
    queue, seen = deque([start]), {start}
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(parent[chain[-1]])
                return chain[::-1] + [start]
            if nxt in members and nxt not in seen:
                seen.add(nxt)
                parent[nxt] = node
                queue.append(nxt)
    return None


def topological(deps: dict[str, tuple[str, ...]], file_order: list[str]) -> list[str]:
    """Kahn's algorithm; among ready nodes the one written first goes first. Omits cycles."""
    rank = {n: i for i, n in enumerate(file_order)}
    waiting = {n: len(d) for n, d in deps.items()}
    users: dict[str, list[str]] = {n: [] for n in deps}
    for name, node_deps in deps.items():
        for dep in node_deps:
            users[dep].append(name)
    ready = [(rank[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (rank[user], user))
    return order
