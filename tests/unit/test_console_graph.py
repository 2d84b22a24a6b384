"""The console's run graph (functions/console/graph.py): real workflows compiled, their SVG parsed and held
to the DOM contract the console's pages rely on, and to a layout whose boxes never overlap."""

from __future__ import annotations

import re
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from functions.console.graph import run_graph
from statemachine.compiler import compile_workflow, load_and_compile
from statemachine.plan import Node, Plan

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = Path(__file__).parent / "workflows"

CHAIN = """
workflow:
  metadata: {id: chain}
  tasks:
    - {id: fetch, type: python, config: {code: "result = 1"}}
    - {id: parse, type: python, depends_on: [fetch], config: {code: "result = 2"}}
    - {id: store, type: python, depends_on: [parse], config: {code: "result = 3"}}
    - {id: notify, type: python, depends_on: [fetch, store], config: {code: "result = 4"}}
"""

CONDITION = """
workflow:
  metadata: {id: cond}
  tasks:
    - {id: score, type: python, config: {code: "result = 7"}}
    - {id: close, type: python, depends_on: [good, bad], config: {code: "result = 0"}}
  control_flow:
    conditions:
      - id: decide
        if: "${tasks.score.output > 5}"
        then:
          - {id: good, type: python, config: {code: "result = 'good'"}}
        else:
          - {id: bad, type: python, config: {code: "result = 'bad'"}}
"""

PARALLEL = """
workflow:
  metadata: {id: par}
  tasks:
    - {id: load, type: python, config: {code: "result = [1, 2, 3]"}}
    - {id: report, type: python, depends_on: [fan], config: {code: "result = tasks['fan']['output']"}}
  control_flow:
    parallel:
      - id: fan
        depends_on: [load]
        max_concurrent: 1
        branches:
          - name: double
            tasks:
              - {id: d1, type: python, config: {code: "result = 1"}}
          - name: total
            tasks:
              - {id: t1, type: python, config: {code: "result = 1"}}
              - {id: t2, type: python, depends_on: [t1], config: {code: "result = 2"}}
        aggregation: {strategy: merge}
"""

LOOP = """
workflow:
  metadata: {id: loops}
  tasks:
    - {id: items, type: python, config: {code: "result = [3, 1, 4]"}}
    - {id: after, type: python, depends_on: [each], config: {code: "result = tasks['each']['output']"}}
  control_flow:
    loops:
      - id: each
        items: "${tasks.items.output}"
        iterator: n
        tasks:
          - {id: square, type: python, config: {code: "result = n * n"}}
          - {id: add, type: python, depends_on: [square], config: {code: "result = tasks['square']['output']"}}
"""

SAGA = """
workflow:
  metadata: {id: trip}
  tasks:
    - id: flight
      type: python
      config: {code: "result = 'FL-1'"}
      compensation: {task_id: cancel_flight}
    - {id: hotel, type: python, depends_on: [flight], config: {code: "result = 'HT-2'"}}
    - {id: cancel_flight, type: python, depends_on: [flight], config: {code: "result = 'refunded'"}}
    - {id: cleanup, type: python, depends_on: [hotel], config: {code: "result = 'clean'"}}
    - {id: log, type: python, config: {code: "result = 'logged'"}}
    - {id: on_error, type: python, config: {code: "result = 'handled'"}}
  error_handling:
    catch: [{handler: on_error}]
    finally: [cleanup, log]
"""


def compiled(text: str) -> Plan:
    return compile_workflow(textwrap.dedent(text).lstrip("\n"), "wf.yaml")


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("class") == "run-graph"
    return root


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for g in groups(root, "node"):
        assert g.get("data-task") not in found, f"{g.get('data-task')} drawn twice"
        found[g.get("data-task") or ""] = g
    return found


def edges(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(g.get("data-from") or "", g.get("data-to") or ""): g for g in groups(root, "edge")}


def child(g: ET.Element, tag: str) -> ET.Element:
    found = g.find(f"{SVG}{tag}")
    assert found is not None, f"no {tag} in {g.attrib}"
    return found


def box(g: ET.Element) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a node's or a cluster's shape (a rect, or a condition's polygon)."""
    shape = next(e for e in g if e.tag in (f"{SVG}rect", f"{SVG}polygon"))
    if shape.tag == f"{SVG}rect":
        x, y = float(shape.get("x", 0)), float(shape.get("y", 0))
        return x, y, x + float(shape.get("width", 0)), y + float(shape.get("height", 0))
    points = [tuple(map(float, p.split(","))) for p in (shape.get("points") or "").split()]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    return outer[0] < inner[0] and outer[1] < inner[1] and inner[2] < outer[2] and inner[3] < outer[3]


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def assert_sound(plan: Plan, root: ET.Element) -> None:
    """Every plan node exactly once, no two boxes overlapping, every edge between drawn nodes."""
    drawn = nodes(root)
    assert sorted(drawn) == sorted(plan.nodes)
    boxes = {task: box(g) for task, g in drawn.items()}
    for a in boxes:
        for b in boxes:
            assert a == b or not overlap(boxes[a], boxes[b]), f"{a} overlaps {b}"
    for a, b in edges(root):
        assert a in plan.nodes and b in plan.nodes
    # all of it inside the picture
    dx, dy = map(float, re.findall(r"[\d.]+", child(root, "g").get("transform", "")))
    shapes = list(boxes.values()) + [box(g) for g in groups(root, "cluster")] + [box(g) for g in groups(root, "legend")]
    assert all(0 <= left + dx and right + dx <= float(root.get("width", 0)) and 0 <= top + dy
               and bottom + dy <= float(root.get("height", 0)) for left, top, right, bottom in shapes)
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def path_points(d: str, steps: int = 8) -> list[tuple[float, float]]:
    """Points along a path of M, L and C commands (all the run graph uses), the curves sampled."""
    points: list[tuple[float, float]] = []
    for command, args in re.findall(r"([MLC])([^MLC]*)", d):
        xy = [float(v) for v in args.split()]
        pairs = list(zip(xy[0::2], xy[1::2]))
        if command == "C":
            (x0, y0), ((x1, y1), (x2, y2), (x3, y3)) = points[-1], pairs
            for k in range(1, steps + 1):
                t = k / steps
                u = 1 - t
                points.append((u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
                               u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3))
        else:
            points += pairs
    return points


def crossings(root: ET.Element) -> list[tuple[str, str, str]]:
    """(from, to, node) for each edge that runs through a node's box other than its own ends."""
    boxes = {task: box(g) for task, g in nodes(root).items()}
    found = []
    for (a, b), g in edges(root).items():
        points = path_points(child(g, "path").get("d", ""))
        for task, (left, top, right, bottom) in boxes.items():
            if task not in (a, b) and any(left < x < right and top < y < bottom for x, y in points):
                found.append((a, b, task))
    return found


@pytest.mark.parametrize("text", [CHAIN, CONDITION, PARALLEL, LOOP, SAGA])
def test_every_node_once_with_its_status_and_no_overlap(text):
    plan = compiled(text)
    first, *rest = plan.nodes
    root = parse(run_graph(plan, {first: "COMPLETED", rest[0]: "FAILED"}))
    assert_sound(plan, root)
    drawn = nodes(root)
    assert drawn[first].get("data-status") == "COMPLETED" and "status-completed" in drawn[first].get("class", "")
    assert drawn[rest[0]].get("data-status") == "FAILED"
    for task in rest[1:]:  # absent from statuses: PENDING
        assert drawn[task].get("data-status") == "PENDING"
        assert drawn[task].get("class") == "node status-pending"
    for task, g in drawn.items():
        assert g.get("data-kind") == plan.nodes[task].kind
        texts = "".join(next(g.iter(f"{SVG}text")).itertext())
        assert task in texts
        title = g.find(f"{SVG}title")
        assert title is not None and task in (title.text or "") and drawn[task].get("data-status") in title.text


def test_a_chain_runs_top_down_with_an_edge_per_dependency():
    plan = compiled(CHAIN)
    root = parse(run_graph(plan, {}))
    drawn = {task: box(g) for task, g in nodes(root).items()}
    assert drawn["fetch"][3] < drawn["parse"][1] < drawn["parse"][3] < drawn["store"][1] < drawn["notify"][1]
    assert set(edges(root)) == {("fetch", "parse"), ("parse", "store"), ("fetch", "notify"), ("store", "notify")}
    for g in edges(root).values():
        assert g.get("data-label") == "" and g.find(f"{SVG}path") is not None
        assert g.find(f"{SVG}polygon") is not None  # the arrowhead


# report also reads a task inside the block: an edge out of the cluster from its middle row
PEEK = PARALLEL.replace("depends_on: [fan]", "depends_on: [fan, t1]")


@pytest.mark.parametrize("text", [CHAIN, CONDITION, PARALLEL, LOOP, SAGA, PEEK])
def test_no_edge_runs_through_a_node(text):
    """A long edge (fetch -> notify past parse and store; load -> t2 into the parallel block past d1 and t1;
    t1 -> report out of it past t2 and fan) goes round the nodes in the rows it crosses."""
    if text is PEEK:
        assert ("t1", "report") in edges(parse(run_graph(compiled(text), {})))
    assert crossings(parse(run_graph(compiled(text), {}))) == []


def test_condition_edges_are_labelled_then_and_else():
    root = parse(run_graph(compiled(CONDITION), {"decide": "COMPLETED", "bad": "SKIPPED"}))
    found = edges(root)
    assert found[("decide", "good")].get("data-label") == "then"
    assert found[("decide", "bad")].get("data-label") == "else"
    assert "".join(found[("decide", "good")].itertext()) == "then"
    assert "".join(found[("decide", "bad")].itertext()) == "else"
    assert found[("score", "decide")].get("data-label") == ""
    assert found[("good", "close")].get("data-label") == ""
    assert nodes(root)["decide"].find(f"{SVG}polygon") is not None


def cluster(root: ET.Element, cid: str) -> ET.Element:
    found = [g for g in groups(root, "cluster") if g.get("data-cluster") == cid]
    assert len(found) == 1
    return found[0]


def test_a_parallel_block_is_a_cluster_around_its_branches_and_its_aggregation():
    plan = compiled(PARALLEL)
    root = parse(run_graph(plan, {"load": "COMPLETED", "d1": "RUNNING"}))
    assert_sound(plan, root)
    fan = cluster(root, "fan")
    assert fan.get("data-kind") == "parallel" and "fan" in "".join(fan.itertext())
    drawn = nodes(root)
    for member in ("d1", "t1", "t2", "fan"):
        assert inside(box(drawn[member]), box(fan)), member
    for outside in ("load", "report"):
        assert not overlap(box(drawn[outside]), box(fan)), outside
    assert box(drawn["fan"])[1] > box(drawn["t2"])[3]  # the aggregation is the block's last row
    found = edges(root)
    assert {("load", "d1"), ("load", "t1"), ("t1", "t2"), ("d1", "fan"), ("t2", "fan"), ("fan", "report")} <= set(found)
    # max_concurrent: 1 makes the second branch wait for the first, whatever its outcome: dotted
    assert "stroke-dasharray" in child(found[("d1", "t1")], "path").attrib


def test_a_loop_is_a_cluster_headed_by_its_node_around_its_body():
    plan = compiled(LOOP)
    root = parse(run_graph(plan, {"each": "WAITING", "square": "COMPLETED", "add": "RUNNING"}))
    assert_sound(plan, root)
    each = cluster(root, "each")
    assert each.get("data-kind") == "loop"
    drawn = nodes(root)
    for member in ("each", "square", "add"):
        assert inside(box(drawn[member]), box(each)), member
    assert box(drawn["each"])[3] < box(drawn["square"])[1]
    assert box(each)[3] < box(drawn["after"])[1]  # what waits for the loop comes after its whole body
    found = edges(root)
    assert {("items", "each"), ("each", "square"), ("square", "add"), ("each", "after")} <= set(found)
    # the edge out of the loop leaves from its cluster's bottom, not across the body from the loop's node
    start = re.match(r"M(-?[\d.]+) (-?[\d.]+)", child(found[("each", "after")], "path").get("d", ""))
    assert start is not None and float(start.group(2)) >= box(each)[3]
    # square reads nothing outside, but a body task that did would show it on the loop only
    assert not any(b in ("square", "add") and a not in ("each", "square") for a, b in found)


NESTED = """
workflow:
  metadata: {id: nested}
  tasks:
    - {id: load, type: python, config: {code: "result = [1]"}}
    - {id: after, type: python, depends_on: [fan], config: {code: "result = 1"}}
  control_flow:
    loops:
      - id: each
        items: "${tasks.load.output}"
        tasks:
          - {id: step, type: python, config: {code: "result = 1"}}
          - {id: step2, type: python, depends_on: [step], config: {code: "result = 2"}}
    parallel:
      - id: fan
        depends_on: [load]
        branches:
          - {name: a, tasks: [{id: a1, type: python, config: {code: "result = 1"}}, each]}
          - {name: b, tasks: [{id: b1, type: python, config: {code: "result = 1"}}]}
"""


def test_a_loop_in_a_parallel_branch_is_a_cluster_in_a_cluster():
    plan = compiled(NESTED)
    assert plan.nodes["each"].parallel_of == "fan" and plan.nodes["step"].loop_of == "each"
    root = parse(run_graph(plan, {}))
    assert_sound(plan, root)
    assert crossings(root) == []
    fan, each = box(cluster(root, "fan")), box(cluster(root, "each"))
    assert inside(each, fan)
    drawn = nodes(root)
    for member in ("each", "step", "step2"):
        assert inside(box(drawn[member]), each), member
    for member in ("a1", "b1", "fan"):
        assert inside(box(drawn[member]), fan) and not overlap(box(drawn[member]), each), member
    # the outer cluster is drawn first, so the inner one shows over it
    order = [g.get("data-cluster") for g in groups(root, "cluster")]
    assert order.index("fan") < order.index("each")


def test_compensation_is_a_dashed_edge_and_role_tasks_are_set_apart():
    plan = compiled(SAGA)
    root = parse(run_graph(plan, {"flight": "COMPLETED", "cancel_flight": "RUNNING"}))
    assert_sound(plan, root)
    found = edges(root)
    undo = found[("flight", "cancel_flight")]
    assert undo.get("data-label") == "compensates" and "compensates" in "".join(undo.itertext())
    assert "stroke-dasharray" in child(undo, "path").attrib
    assert "stroke-dasharray" not in child(found[("flight", "hotel")], "path").attrib
    drawn = nodes(root)
    for task, role in (("cancel_flight", "compensation"), ("cleanup", "finally"), ("log", "finally"),
                       ("on_error", "handler")):
        assert drawn[task].get("data-role") == role
        assert "stroke-dasharray" in child(drawn[task], "rect").attrib
        assert role in "".join(drawn[task].itertext())
    assert drawn["flight"].get("data-role") == "flow"
    assert "stroke-dasharray" not in child(drawn["flight"], "rect").attrib
    # finally tasks run last: below every other task
    lowest = max(box(g)[3] for task, g in drawn.items() if task not in ("cleanup", "log"))
    assert all(box(drawn[task])[1] > lowest for task in ("cleanup", "log"))


def test_the_legend_counts_the_statuses_there_in_lifecycle_order():
    plan = compiled(CHAIN)
    root = parse(run_graph(plan, {"fetch": "COMPLETED", "parse": "COMPLETED", "store": "RUNNING"}))
    (legend,) = groups(root, "legend")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["pending 1", "running 1", "completed 2"]
    assert root.get("aria-label") == "Run graph of workflow chain: 4 tasks (1 pending, 1 running, 2 completed)"
    assert all(box(legend)[1] > box(g)[3] for g in nodes(root).values())  # under the graph


def test_links_wrap_each_node():
    plan = compiled(CONDITION)
    root = parse(run_graph(plan, {}, link=lambda task: f"/runs/r1/tasks/{task}?a=1&b=2"))
    anchors = list(root.iter(f"{SVG}a"))
    assert sorted(a.get("href") for a in anchors) == sorted(f"/runs/r1/tasks/{t}?a=1&b=2" for t in plan.nodes)
    for a in anchors:
        (g,) = list(a)
        assert g.get("class", "").startswith("node ") and a.get("href", "").endswith(f"{g.get('data-task')}?a=1&b=2")


def test_untrusted_ids_and_names_are_escaped():
    bad = "x<script>alert('\"&')</script>"
    plan = compiled(CHAIN)
    renamed = {k: v for k, v in plan.nodes.items() if k != "parse"}
    renamed[bad] = plan.nodes["parse"].model_copy(update={"id": bad, "name": "<b>&</b>"})
    renamed["store"] = plan.nodes["store"].model_copy(update={"deps": (bad,)})
    evil = plan.model_copy(update={"nodes": renamed, "workflow_id": "<wf>"})
    svg = run_graph(evil, {bad: "RUNNING"}, link=lambda task: f"/tasks/{task}")
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    drawn = nodes(root)
    assert drawn[bad].get("data-status") == "RUNNING"
    assert (bad, "store") in edges(root)
    assert "<wf>" in (root.get("aria-label") or "")


def test_an_unknown_status_is_shown_as_it_is_and_a_control_character_cannot_break_the_document():
    plan = compiled(CHAIN)
    odd = plan.model_copy(update={"nodes": {**plan.nodes, "ghost\x01": Node(id="ghost\x01")}})
    root = parse(run_graph(odd, {"fetch": "EXPLODED"}))
    drawn = nodes(root)
    assert drawn["fetch"].get("data-status") == "EXPLODED" and drawn["fetch"].get("class") == "node status-unknown"
    assert "ghost\ufffd" in drawn


def test_a_plan_no_compiler_would_give_still_draws():
    """Not the compiler's: a cycle and a dependency on nothing are drawn, not a reason to fail the page."""
    odd = Plan(workflow_id="odd", nodes={"a": Node(id="a", deps=("b", "gone")), "b": Node(id="b", deps=("a",))})
    root = parse(run_graph(odd, {}))
    assert_sound(odd, root)
    assert set(edges(root)) == {("a", "b"), ("b", "a")}
    empty = parse(run_graph(Plan(workflow_id="empty", nodes={}), {}))
    assert nodes(empty) == {} and empty.get("aria-label") == "Run graph of workflow empty: 0 tasks"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")) + sorted(WORKFLOWS.glob("*.yaml")),
                         ids=lambda path: path.name)
def test_the_examples_render(path):
    plan = load_and_compile(path)
    root = parse(run_graph(plan, {}))
    assert_sound(plan, root)
    assert crossings(root) == []


def test_two_hundred_nodes_are_quick_sound_and_no_wider_than_they_need():
    """Ten stages of twenty, each task reading two of the stage before; every third also reads the setup."""
    lines = ["workflow:", "  metadata: {id: big}", "  tasks:",
             "    - {id: setup, type: python, config: {code: 'x = 1'}}"]
    for stage in range(10):
        for w in range(20):
            deps = {f"s{stage - 1}_{w}", f"s{stage - 1}_{(w * 7 + 3) % 20}"} if stage else set()
            deps |= {"setup"} if w % 3 == 0 else set()
            lines.append(f"    - {{id: s{stage}_{w}, type: python, depends_on: [{', '.join(sorted(deps))}], "
                         "config: {code: 'x = 1'}}")
    plan = compiled("\n".join(lines) + "\n")
    start = time.perf_counter()
    svg = run_graph(plan, {f"s0_{w}": "COMPLETED" for w in range(20)})
    assert time.perf_counter() - start < 1  # tens of milliseconds: this catches a blow-up, not a regression
    root = parse(svg)
    assert_sound(plan, root)
    rows: dict[float, float] = {}
    for g in nodes(root).values():
        left, top, right, _ = box(g)
        rows[top] = rows.get(top, 0.0) + right - left
    widest = max(rows.values())
    # a row of twenty plus the gaps between them, and the lanes of the long edges from setup
    assert float(root.get("width", 0)) < 1.5 * widest


def test_the_same_plan_draws_the_same_svg():
    plan = compiled(PARALLEL)
    assert run_graph(plan, {"d1": "RUNNING"}) == run_graph(compiled(PARALLEL), {"d1": "RUNNING"})
