"""The run graph of the web console: a compiled plan drawn as SVG, each task coloured by its status.

Pure: a plan and the statuses in, SVG text out (functions/console/graph_layout.py places the nodes).
The DOM is a contract the console's pages and browser tests rely on:

- ``<svg class="run-graph">`` with a viewBox, width, height, ``role="img"`` and an aria-label
  that counts the tasks by status;
- ``<g class="cluster" data-cluster=ID data-kind="loop|parallel">``: a labelled rounded rect around a
  loop's body (with the loop's node at its head) or a parallel block's branches (with the block's
  aggregation node as its last row); clusters nest as blocks do. Members are inside the rect, not
  inside the ``<g>``: every node is a sibling, drawn after clusters and edges so it stays on top;
- ``<g class="edge" data-from data-to data-label="then|else|compensates|">``: a path and an
  arrowhead polygon of its own (no marker ids, which would clash between two graphs on a page);
  then/else also as visible text; "compensates" dashed, from a task to the one that undoes it; a
  max_concurrent ordering (the branch waits, whatever the outcome) dotted;
- ``<g class="node status-<status>" data-task data-kind data-status data-role>``: a shape, a
  ``<title>`` (id, type, status) and a ``<text>`` with the id and, on a second line, the type;
  wrapped in ``<a href>`` when ``link`` is given. A task missing from ``statuses`` is PENDING; a
  status that is no TaskStatus value is kept in data-status, with the class ``status-unknown``.

Tasks that run only in a role (finally, catch handler, compensation) have a dashed outline and
their role after their type; finally tasks are also laid out below everything else, under a dashed
divider labelled "finally", since they run at the end whatever happened.

Colours are inline attributes (it renders without the page's CSS) and the status class lets a page
restyle them; ``<g class="legend">`` under the graph counts the statuses present, and so does the
aria-label. Every text and attribute is escaped: ids come from workflow authors.
"""

from __future__ import annotations

import re
from collections import Counter
from html import escape
from typing import Callable, Mapping

from functions.console.graph_layout import CHAR_W, NODE_H, Box, Edge, Layout, lay_out, subtitle
from statemachine.plan import Node, Plan
from statemachine.status import TaskStatus

MARGIN = 16
LEGEND_GAP, LEGEND_H = 20, 12
# status -> (fill, stroke): light fills so the dark text reads on every one
COLOURS = {
    "PENDING": ("#f3f4f6", "#9ca3af"),
    "READY": ("#e0f2fe", "#0284c7"),
    "RUNNING": ("#dbeafe", "#2563eb"),
    "WAITING": ("#fef3c7", "#d97706"),
    "RETRYING": ("#ffedd5", "#ea580c"),
    "COMPLETED": ("#dcfce7", "#16a34a"),
    "FAILED": ("#fee2e2", "#dc2626"),
    "SKIPPED": ("#f5f5f4", "#a8a29e"),
    "CANCELLED": ("#e5e7eb", "#6b7280"),
}
UNKNOWN = ("#ffffff", "#6b7280")
EDGE_COLOUR = "#6b7280"
# XML 1.0 cannot hold these even as character references: an id carrying one still gives a document
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def run_graph(plan: Plan, statuses: Mapping[str, str], *, link: Callable[[str], str] | None = None) -> str:
    """The plan as an SVG document; a task missing from ``statuses`` is PENDING; ``link(id)`` makes nodes links."""
    layout = lay_out(plan)
    status = {n: str(statuses.get(n, TaskStatus.PENDING)) for n in plan.nodes}
    counts = Counter(status.values())
    present = [s for s in COLOURS if s in counts] + sorted(set(counts) - set(COLOURS))  # in lifecycle order
    legend, legend_w = _legend(present, counts, layout.height + LEGEND_GAP)
    width = max(layout.width, legend_w) + 2 * MARGIN
    height = layout.height + (LEGEND_GAP + LEGEND_H if present else 0) + 2 * MARGIN
    summary = ", ".join(f"{counts[s]} {s.lower()}" for s in present)
    label = f"Run graph of workflow {plan.workflow_id}: {len(plan.nodes)} tasks" + (f" ({summary})" if summary else "")
    out = [f'<svg class="run-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
           f'width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{_esc(label)}" '
           'font-family="system-ui, sans-serif" font-size="12">',
           f'<g transform="translate({MARGIN} {MARGIN})">']
    # outermost first, so a nested cluster is drawn over the one around it
    for cid in sorted(layout.clusters, key=lambda c: len(layout.chains[c])):
        out.append(_cluster(plan.nodes[cid], layout.clusters[cid]))
    if layout.finally_y is not None:
        y = _n(layout.finally_y)
        out.append(f'<g class="finally-divider"><line x1="0" y1="{y}" x2="{_n(layout.width)}" y2="{y}" '
                   f'stroke="#9ca3af" stroke-dasharray="6 4"/><text x="0" y="{_n(layout.finally_y - 4)}" '
                   'fill="#6b7280" font-size="11">finally</text></g>')
    out += [_edge(edge, bends, layout) for edge, bends in zip(layout.edges, layout.bends)]
    for node in plan.nodes.values():
        drawn = _node(node, layout.nodes[node.id], status[node.id])
        out.append(f'<a href="{_esc(link(node.id))}">{drawn}</a>' if link is not None else drawn)
    out += [legend, "</g></svg>"]
    return "\n".join(out)


def _legend(present: list[str], counts: Counter[str], y: float) -> tuple[str, float]:
    """One line under the graph: a swatch, the status and how many tasks have it, for each status there."""
    parts, x = ['<g class="legend">'], 0.0
    for status in present:
        fill, stroke = COLOURS.get(status, UNKNOWN)
        text = f"{status.lower()} {counts[status]}"
        parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>'
                     f'<text x="{_n(x + 17)}" y="{_n(y + 10)}" fill="#374151" font-size="11">{_esc(text)}</text>')
        x += 17 + CHAR_W * len(text) + 14
    return "".join(parts) + "</g>", max(x - 14, 0.0)


def _cluster(node: Node, box: Box) -> str:
    name = f"{node.config.get('type', 'loop')} {node.id}" if node.kind == "loop" else f"parallel {node.id}"
    fill = "#f8fafc" if node.kind == "loop" else "#faf5ff"
    return (f'<g class="cluster" data-cluster="{_esc(node.id)}" data-kind="{_esc(node.kind)}">'
            f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" rx="10" '
            f'fill="{fill}" stroke="#94a3b8"/>'
            f'<text x="{_n(box.x + 8)}" y="{_n(box.y + 14)}" fill="#475569" font-size="11">'
            f'{_esc(_fit(name, box.w - 16))}</text></g>')


def _anchor(layout: Layout, node_id: str, other: str, bottom: bool) -> tuple[float, float]:
    """Where an edge meets a node: a block seen from outside its cluster is met at the cluster's rect."""
    box = layout.nodes[node_id]
    if node_id in layout.clusters and node_id not in layout.chains[other]:
        box = layout.clusters[node_id]
    return box.x + box.w / 2, box.y + box.h if bottom else box.y


def _edge(edge: Edge, bends: list[Box], layout: Layout) -> str:
    """A path from the source's bottom through each bend (straight down its row) to the target's top."""
    points = [_anchor(layout, edge.source, edge.target, True)]
    for bend in bends:
        if points[-1][0] == bend.x + bend.w / 2 and len(points) > 1:  # the lane goes straight on: one stretch
            points[-1] = (points[-1][0], bend.y + bend.h)
        else:
            points += [(bend.x + bend.w / 2, bend.y), (bend.x + bend.w / 2, bend.y + bend.h)]
    x2, y2 = _anchor(layout, edge.target, edge.source, False)
    down = 1 if y2 >= points[-1][1] else -1  # an edge only goes up where a cycle was broken
    points.append((x2, y2 - 7 * down))  # the arrowhead's base
    (x1, y1), (xb, yb) = points[0], points[1]
    d = [f"M{_n(x1)} {_n(y1)}"]
    for k in range(1, len(points)):
        (ax, ay), (bx, by) = points[k - 1], points[k]
        mid = (ay + by) / 2
        d.append(f"L{_n(bx)} {_n(by)}" if k % 2 == 0 else f"C{_n(ax)} {_n(mid)} {_n(bx)} {_n(mid)} {_n(bx)} {_n(by)}")
    dash = {"compensates": ' stroke-dasharray="6 4"'}.get(edge.label, ' stroke-dasharray="2 3"' if edge.order_only
                                                           else "")
    colour = "#b45309" if edge.label == "compensates" else EDGE_COLOUR
    tip = points[-1][1]
    parts = [f'<g class="edge" data-from="{_esc(edge.source)}" data-to="{_esc(edge.target)}" '
             f'data-label="{edge.label}">',
             f'<path d="{" ".join(d)}" fill="none" stroke="{colour}" stroke-width="1.4"{dash}/>',
             f'<polygon points="{_n(x2)},{_n(y2)} {_n(x2 - 4)},{_n(tip)} {_n(x2 + 4)},{_n(tip)}" fill="{colour}"/>']
    if edge.label:  # on the first stretch, next to the node the edge leaves
        parts.append(f'<text x="{_n((x1 + xb) / 2 + 4)}" y="{_n((y1 + yb) / 2 + 4)}" fill="{colour}" font-size="11" '
                     f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{edge.label}</text>')
    return "".join(parts) + "</g>"


def _node(node: Node, box: Box, status: str) -> str:
    fill, stroke = COLOURS.get(status, UNKNOWN)
    css = status.lower() if status in COLOURS else "unknown"
    dash = "" if node.role == "flow" else ' stroke-dasharray="5 3"'
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if status == "RUNNING" else 1.5}"{dash}'
    x, y, w, h = box.x, box.y, box.w, box.h
    if node.kind == "condition":  # a hexagon: a diamond wide enough for its text
        points = [(x, y + h / 2), (x + 12, y), (x + w - 12, y), (x + w, y + h / 2), (x + w - 12, y + h),
                  (x + 12, y + h)]
        shape = f'<polygon points="{" ".join(f"{_n(a)},{_n(b)}" for a, b in points)}" {paint}/>'
    else:
        radius = {"loop": 16, "parallel": 2}.get(node.kind, 6)
        shape = f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="{radius}" {paint}/>'
    kind = subtitle(node)
    title = f"{node.id} ({kind}): {status}" + (f" — {node.name}" if node.name and node.name != node.id else "")
    ink = "#6b7280" if status in ("SKIPPED", "CANCELLED") else "#111827"
    cx = _n(x + w / 2)
    text = (f'<text x="{cx}" y="{_n(y + NODE_H / 2 - 3)}" text-anchor="middle" fill="{ink}">'
            f'<tspan x="{cx}" font-weight="600">{_esc(_fit(node.id, w))}</tspan>'
            f'<tspan x="{cx}" dy="15" font-size="10.5" fill="#4b5563">{_esc(_fit(kind, w))}</tspan></text>')
    return (f'<g class="node status-{css}" data-task="{_esc(node.id)}" data-kind="{_esc(node.kind)}" '
            f'data-status="{_esc(status)}" data-role="{_esc(node.role)}"><title>{_esc(title)}</title>{shape}{text}</g>')


def _fit(text: str, width: float) -> str:
    """The text, cut with an ellipsis where it would overflow a box this wide (the title keeps it whole)."""
    room = max(int((width - 16) / CHAR_W), 4)
    return text if len(text) <= room else text[:room - 1] + "…"


def _esc(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _n(value: float) -> str:
    """A coordinate, short: 12 rather than 12.0, at most one decimal."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
