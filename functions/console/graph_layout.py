"""Where each node of a plan goes in the run graph: a layered layout, top to bottom, pure and deterministic.

functions/console/graph.py draws what this returns. The layout is a Sugiyama-lite over a tree of
levels: the top level holds the plan's nodes outside any block, and each loop or parallel block is
a cluster, laid out on its own first and then placed in its parent as one item that spans several
rows. That keeps a cluster's members together inside its rectangle and no node inside another
cluster's, which a flat layout would have to repair afterwards.

At each level:
- rows: the longest path over the level's edges, an item spanning as many rows as it is tall;
- bends: an edge longer than one row gets a narrow item in each row it crosses, so it passes beside the
  boxes there; an edge into or out of a cluster gets them down the cluster's rows too;
- order: rows are filled top-down, each item asking for the mean x of the items it depends on (one
  barycentre pass); neighbours that would collide move together, centred on what they ask for, and
  nothing goes left of what a taller item from above holds in its rows, so boxes never overlap.

What the edges mean (the plan's own structure, statemachine/graph.py):
- a loop's node is its cluster's head: an edge runs from it to the body's first tasks, and a body
  task's dependencies outside the loop are the loop's own (the compiler moves them there), so only
  the loop shows them;
- a parallel block's node is its aggregation: its cluster's last row, fed by each branch's last tasks;
- a condition's edge to a task of its branch is labelled "then" or "else";
- a compensated task has a "compensates" edge to the task that undoes it, which also puts it above;
- finally tasks go below everything else, under a divider.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from statemachine.plan import Node, Plan

NODE_H = 44
VGAP = 36  # between rows; edge labels sit in it
ROW = NODE_H + VGAP
HGAP = 28
PAD = 10  # inside a cluster, around its members
LABEL_H = 18  # a cluster's label band, above its members
CHAR_W = 7.0  # a 12px sans-serif character, near enough to size boxes without measuring text
MIN_W, MAX_W = 110, 220
BLOCKS = ("loop", "parallel")

# (kind, id), kind "node", "cluster" or "bend": a cluster's id is its block node's id, which is an item too;
# a bend is a point an edge longer than one row passes, given room in its row so the edge misses the boxes there.
# An edge's end outside a cluster is a port of the cluster's level: ("in", source id) or ("out", target id).
Item = tuple[str, str]
PORTS = ("in", "out")
LevelEdge = tuple[str | None, Item, Item]  # (level, from, to)
BEND_W = 8.0


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""  # "then", "else", "compensates" or ""
    order_only: bool = False  # a max_concurrent ordering: the branch waits, whatever the outcome


@dataclass
class Layout:
    nodes: dict[str, Box]  # plan node id -> its box
    clusters: dict[str, Box]  # loop or parallel id -> the rectangle around its members
    chains: dict[str, tuple[str, ...]]  # node id -> the clusters it is in, outermost first
    edges: list[Edge]
    bends: list[list[Box]]  # for each edge, the rows it crosses on its way, top down
    width: float
    height: float
    finally_y: float | None = None  # the divider above finally tasks, if any


@dataclass
class _Level:
    items: dict[Item, None] = field(default_factory=dict)  # an ordered set, in plan order
    edges: set[tuple[Item, Item]] = field(default_factory=set)


@dataclass
class _Placed:
    """A level laid out, relative to its top left."""

    nodes: dict[str, Box]
    clusters: dict[str, Box]
    bends: dict[LevelEdge, list[Box]]
    width: float
    rows: int

    def shifted(self, dx: float, dy: float) -> _Placed:
        return _Placed({k: b.shifted(dx, dy) for k, b in self.nodes.items()},
                       {k: b.shifted(dx, dy) for k, b in self.clusters.items()},
                       {k: [b.shifted(dx, dy) for b in bs] for k, bs in self.bends.items()}, self.width, self.rows)


def node_width(node: Node) -> float:
    text = max(len(node.id), len(subtitle(node)))
    return float(min(MAX_W, max(MIN_W, math.ceil(CHAR_W * text) + 24)))


def subtitle(node: Node) -> str:
    """The second line of a node: its type, and its role when it runs only in one."""
    kind = node.type or node.kind.replace("_", "-")
    return kind if node.role == "flow" else f"{kind} · {node.role}"


def container(node: Node, nodes: dict[str, Node]) -> str | None:
    """The cluster a node is drawn in: a block is in its own, a member in its block's."""
    if node.kind in BLOCKS:
        return node.id
    parent = node.parallel_of or node.loop_of
    return parent if parent in nodes and nodes[parent].kind in BLOCKS else None


def _chains(nodes: dict[str, Node]) -> dict[str, tuple[str, ...]]:
    """For each node, the clusters it is drawn in, outermost first (a block's own cluster last)."""
    chains: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        chain: list[str] = []
        at = container(node, nodes)
        while at is not None and at not in chain:  # a malformed plan could loop: stop there
            chain.append(at)
            up = nodes[at]
            parent = up.parallel_of or up.loop_of
            at = parent if parent in nodes and nodes[parent].kind in BLOCKS else None
        chains[node.id] = tuple(reversed(chain))
    return chains


def graph_edges(plan: Plan) -> list[Edge]:
    """The edges drawn: the plan's dependencies as the module docstring reads them, then compensations."""
    nodes = plan.nodes
    undo = {(n.id, n.compensation.task_id) for n in nodes.values()
            if n.compensation is not None and n.compensation.task_id in nodes}
    member_deps: dict[str, set[str]] = {}
    for node in nodes.values():
        if node.parallel_of is not None:
            member_deps.setdefault(node.parallel_of, set()).update(node.deps)
    edges: list[Edge] = []
    for node in nodes.values():
        if node.kind == "loop":
            edges += [Edge(node.id, r) for r in node.config.get("roots", ()) if r in nodes]
        for dep in node.deps:
            if dep not in nodes or (dep, node.id) in undo:
                continue
            if node.loop_of is not None and nodes[dep].loop_of != node.loop_of:
                continue  # the loop's own dependency: drawn into the loop once, not into each body task
            if node.kind == "parallel" and dep in member_deps.get(node.id, ()) and nodes[dep].parallel_of != node.id:
                continue  # drawn into the branches, which wait for it on the block's behalf
            branch = node.branch_of
            label = branch[1] if branch is not None and branch[0] == dep else ""
            edges.append(Edge(dep, node.id, label, dep in node.order_deps))
    return edges + [Edge(a, b, "compensates") for a, b in sorted(undo)]


def lay_out(plan: Plan) -> Layout:
    nodes = plan.nodes
    chains = _chains(nodes)
    edges = graph_edges(plan)
    levels: dict[str | None, _Level] = {}
    for node_id, chain in chains.items():  # each item once, in plan order, at the level that holds it
        for depth in range(len(chain) + 1):
            levels.setdefault(chain[depth - 1] if depth else None, _Level()).items[_item(chain, depth, node_id)] = None
    route: list[list[LevelEdge]] = []  # for each edge, the level edges it is drawn along, top down
    for edge in edges:
        a, b = chains[edge.source], chains[edge.target]
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        ia, ib = _item(a, k, edge.source), _item(b, k, edge.target)
        if ia == ib:
            route.append([])
            continue
        # Out of the clusters around the source, innermost first, and into those around the target: each
        # such stretch gets bends down its cluster's rows too. Not for a block's own node, which an edge
        # from outside meets at its cluster's rectangle.
        out = [(a[j], _item(a, j + 1, edge.source), ("out", edge.target))
               for j in reversed(range(k, len(a))) if a[j] != edge.source]
        into = [(b[j], ("in", edge.source), _item(b, j + 1, edge.target))
                for j in range(k, len(b)) if b[j] != edge.target]
        route.append([*out, (a[k - 1] if k else None, ia, ib), *into])
        for level, x, y in route[-1]:
            levels[level].edges.add((x, y))
    finals = {("node", t) for t in plan.finally_tasks if t in nodes}
    placer = _Placer(nodes, levels, finals)
    top = placer.level(None)
    bends = [[b for key in keys for b in top.bends.get(key, [])] for keys in route]
    return Layout(top.nodes, top.clusters, chains, edges, bends,
                  top.width, max(top.rows * ROW - VGAP, NODE_H), placer.finally_y)


def _item(chain: tuple[str, ...], depth: int, node_id: str) -> Item:
    """What stands for a node at the level ``depth`` clusters down its chain: the node, or a cluster around it."""
    return ("cluster", chain[depth]) if depth < len(chain) else ("node", node_id)


class _Placer:
    def __init__(self, nodes: dict[str, Node], levels: dict[str | None, _Level], finals: set[Item]):
        self.nodes, self.levels, self.finals = nodes, levels, finals
        self.finally_y: float | None = None

    def level(self, at: str | None) -> _Placed:
        level = self.levels.get(at, _Level())
        items = list(level.items)
        inner: dict[Item, _Placed] = {}
        width: dict[Item, float] = {}
        span: dict[Item, int] = {}
        for item in items:
            if item[0] == "cluster":
                inner[item] = self.level(item[1])
                label = CHAR_W * (len(item[1]) + 12) + 2 * PAD  # "for_each <id>" and some room
                width[item] = max(inner[item].width + 2 * PAD, label)
                span[item] = math.ceil((_cluster_height(inner[item].rows) + VGAP) / ROW)
            else:
                width[item], span[item] = node_width(self.nodes[item[1]]), 1
        inside = {e for e in level.edges if e[0][0] not in PORTS and e[1][0] not in PORTS}
        row = _rows(items, inside, span, self.finals if at is None else set())
        if at is None and self.finals:
            self.finally_y = min(row[i] for i in self.finals) * ROW - VGAP / 2
        bottom = max((row[i] + span[i] for i in items), default=1)
        # An edge longer than one row passes a bend in each row between its ends. The edges leaving one item
        # share their bends (a lane down from it, each leaving where its target is), as do those coming into
        # the level from one source: fewer points to place, and a fan-out reads as one line that splits.
        rank = {item: i for i, item in enumerate(items)}
        links: set[tuple[Item, Item]] = set()
        chain: dict[tuple[Item, Item], list[Item]] = {}
        for a, b in sorted(level.edges):
            lane = f"in:{a[1]}" if a[0] == "in" else str(rank[a])
            rows = range(0 if a[0] == "in" else row[a] + span[a], bottom if b[0] == "out" else row[b])
            chain[(a, b)] = [("bend", f"{r}:{lane}") for r in rows]
            for r, bend in zip(rows, chain[(a, b)]):
                if bend not in row:
                    row[bend], span[bend], width[bend] = r, 1, BEND_W
                    items.append(bend)
            path = [i for i in (a, *chain[(a, b)], b) if i[0] not in PORTS]
            links.update(zip(path, path[1:]))
        x = _columns(items, links, row, span, width)
        placed = _Placed({}, {}, {}, max((x[i] + width[i] for i in items), default=0.0), bottom)
        for item in items:
            top = row[item] * ROW
            if item[0] == "node":
                placed.nodes[item[1]] = Box(x[item], top, width[item], NODE_H)
            elif item[0] == "cluster":
                placed.clusters[item[1]] = Box(x[item], top, width[item], _cluster_height(inner[item].rows))
                sub = inner[item].shifted(x[item] + PAD, top + LABEL_H + PAD)
                placed.nodes.update(sub.nodes)
                placed.clusters.update(sub.clusters)
                placed.bends.update(sub.bends)
        for (a, b), bends in chain.items():
            placed.bends[(at, a, b)] = [Box(x[i], row[i] * ROW, BEND_W, NODE_H) for i in bends]
        return placed


def _cluster_height(rows: int) -> float:
    return LABEL_H + 2 * PAD + rows * ROW - VGAP


def _rows(items: list[Item], edges: set[tuple[Item, Item]], span: dict[Item, int],
          finals: set[Item]) -> dict[Item, int]:
    """Longest path from the level's roots; finally tasks start below every other item."""
    rank = {item: i for i, item in enumerate(items)}
    preds: dict[Item, list[Item]] = {item: [] for item in items}
    succs: dict[Item, list[Item]] = {item: [] for item in items}
    for a, b in sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]])):
        preds[b].append(a)
        succs[a].append(b)
    # Kahn's order, ties in plan order; on a cycle (never in a compiled plan) the first stuck item goes on.
    waiting = {item: len(preds[item]) for item in items}
    ready = [(rank[i], i) for i in items if not waiting[i]]
    heapq.heapify(ready)
    order: list[Item] = []
    done: set[Item] = set()
    while len(order) < len(items):
        if not ready:
            stuck = min((i for i in items if i not in done), key=rank.__getitem__)
            heapq.heappush(ready, (rank[stuck], stuck))
        _, item = heapq.heappop(ready)
        if item in done:
            continue
        done.add(item)
        order.append(item)
        for nxt in succs[item]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0 and nxt not in done:
                heapq.heappush(ready, (rank[nxt], nxt))
    floor = 0
    while True:  # a second pass, only with finally tasks, pushes them below the rest
        row: dict[Item, int] = {}
        for item in order:  # a predecessor not yet in ``row`` is one a cycle was broken at: ignored
            row[item] = max([row[p] + span[p] for p in preds[item] if p in row] + [floor if item in finals else 0])
        if floor or not finals:
            return row
        floor = max((row[i] + span[i] for i in items if i not in finals), default=0)
        if not floor:
            return row


def _columns(items: list[Item], edges: set[tuple[Item, Item]], row: dict[Item, int], span: dict[Item, int],
             width: dict[Item, float]) -> dict[Item, float]:
    """Fill rows top-down, each item wanting the mean x of its dependencies (one barycentre pass)."""
    rank = {item: i for i, item in enumerate(items)}
    preds: dict[Item, list[Item]] = {item: [] for item in items}
    for a, b in edges:
        preds[b].append(a)
    x: dict[Item, float] = {}
    right: dict[int, float] = {}  # row -> right edge of what an item from a row above already holds there
    by_row: dict[int, list[Item]] = {}
    for item in items:
        by_row.setdefault(row[item], []).append(item)
    for r in sorted(by_row):
        wanted: dict[Item, float] = {}
        for item in by_row[r]:
            centres = [x[p] + width[p] / 2 for p in preds[item] if p in x]
            wanted[item] = sum(centres) / len(centres) - width[item] / 2 if centres else 0.0
        order = sorted(by_row[r], key=lambda i: (wanted[i], rank[i]))
        # right of whatever a taller item from above holds in any row this one spans
        bound = {i: max([0.0] + [right[k] + HGAP for k in range(r, r + span[i]) if k in right]) for i in order}
        x.update(_pack(order, wanted, width, bound))
        for item in order:
            for k in range(r, r + span[item]):
                right[k] = max(right.get(k, 0.0), x[item] + width[item])
    return x


def _pack(order: list[Item], wanted: dict[Item, float], width: dict[Item, float],
          bound: dict[Item, float]) -> dict[Item, float]:
    """Left to right, each as near where it wants to be as the gaps allow: neighbours that would collide
    move as one block centred on what its members want (pool adjacent violators), none left of its bound.
    Pushing each one right of the last instead lets a wide graph drift further right on every row."""
    blocks: list[_Block] = []
    for item in order:
        blocks.append(_Block([item], [0.0], wanted[item], bound[item], width[item]))
        while len(blocks) > 1 and blocks[-2].x + blocks[-2].width + HGAP > blocks[-1].x:
            last = blocks.pop()
            blocks[-1].take(last, wanted, bound, width)
    return {item: block.x + off for block in blocks for item, off in zip(block.items, block.offsets)}


@dataclass
class _Block:
    items: list[Item]
    offsets: list[float]
    wants: float  # the sum of where each member wants the block to start
    floor: float  # the leftmost start no member's bound forbids
    width: float

    @property
    def x(self) -> float:
        return max(self.wants / len(self.items), self.floor)

    def take(self, other: _Block, wanted: dict[Item, float], bound: dict[Item, float],
             width: dict[Item, float]) -> None:
        shift = self.width + HGAP
        for item, off in zip(other.items, other.offsets):
            self.items.append(item)
            self.offsets.append(off + shift)
            self.wants += wanted[item] - (off + shift)
            self.floor = max(self.floor, bound[item] - (off + shift))
        self.width = shift + other.width
