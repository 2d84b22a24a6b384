"""A join counted by reading: whether a task with several dependencies is ready, decided from its
dependencies' items as they stand instead of from an edge written on its own item per dependency.

The engine (infra/engine/propagate.py) does this for a flow task outside loops with two or more
dependencies whose items lie close together in the run's key order: after a dependency's end is
written, one strongly consistent read of the span of keys from the first of them to the last
(``StateStore.read_span``: one DynamoDB ``Query``, billed by the bytes read, where an edge costs a
write unit each) says whether every dependency has ended. Of two dependencies that end at once, the
one whose read comes last sees the other's end, since each read comes after its own write; two that
both see every end race for the dependent's one conditional write (its claim, or its skip). Other
dependents keep their counted edges (``resolve_edge``): one with a single dependency (its claim
counts the edge when it is carried on), a parallel block (its ``first`` strategy counts branches),
a loop body's tasks, and any task whose span holds items that may be many (a loop's iterations, an
approval's votes, a role task's instances) or more than ``SPAN_NODES`` tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .decisions import DepCounts, edge_outcome
from .plan import Node, Plan
from .state import Catch, catch_step
from .status import TASK_ENDED, TaskStatus

# The most plan nodes a span may hold: each costs its item's bytes in every read of the span.
SPAN_NODES = 16


class Ended(Protocol):
    """What a dependency's item says of its end (infra/records.py's TaskRecord is one)."""

    status: str
    output: Any
    catch: Catch | None


def counted_by_reading(plan: Plan, node: Node) -> bool:
    """Whether ``node``'s dependencies are counted by reading them (this module's docstring says when)."""
    if node.role != "flow" or node.loop_of is not None or node.kind == "parallel" or len(node.deps) < 2:
        return False
    if any(plan.nodes[d].loop_of is not None for d in node.deps):
        return False
    ids = span_ids(node)
    first, last = min(ids), max(ids)
    # Every item key is a node's id, or starts with one ("<loop>.<i>", "<task>@<loop>.<i>", "<task>:vote:...",
    # "<handler>@<task>"): the nodes whose keys may fall between ``first`` and ``last``.
    inside = [n for n in plan.nodes.values() if n.id <= last and (n.id >= first or first.startswith(n.id))]
    return len(inside) <= SPAN_NODES and all(_one_item(n) for n in inside)


def span_ids(node: Node) -> list[str]:
    """The items a join's read is about: its own (its status and epoch) and its dependencies'."""
    return [node.id, *node.deps]


def _one_item(node: Node) -> bool:
    """A node that keeps one item in a run, however it goes: a flow task or condition outside loops with
    no links (a callback's, an event wait's or an approval's refused uses and votes are items of their own)."""
    return (node.role == "flow" and node.loop_of is None and node.kind in ("task", "condition")
            and node.type not in ("callback", "approval") and node.requires_approval is None
            and not (node.type == "wait" and node.config.get("event") is not None))


def dep_done(item: Ended | None) -> bool:
    """Whether a dependency's item has ended for its dependents: a failure waiting for its catch handler
    has not (its dependents go on with the handler's outcome)."""
    if item is None or item.status not in TASK_ENDED:
        return False
    return not (item.status == TaskStatus.FAILED and catch_step(item.catch) == "pending")


def joined_counts(plan: Plan, node: Node, items: Mapping[str, Ended]) -> DepCounts | None:
    """``node``'s dependency counts once every dependency has ended (``items``: their items by id, a missing
    one not started), as the edges ``resolve_edge`` counts would add up; None while one has not ended."""
    ok = failed = skipped = 0
    forced = False
    for dep_id in node.deps:
        item = items.get(dep_id)
        if item is None or not dep_done(item):
            return None
        outcome = edge_outcome(plan.nodes[dep_id], item.status, item.output, node,
                               catch_step(item.catch) == "caught")
        ok += outcome == "ok"
        failed += outcome == "failed"
        skipped += outcome in ("skipped", "force_skip")
        forced = forced or outcome == "force_skip"
    return DepCounts(ok, failed, skipped, forced)
