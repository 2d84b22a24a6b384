"""A graph document (nodes, edges, a shared context) -> the workflow language's data.

The graph form (docs/graph-form.md) is a second way to write a workflow, in the
shape of LangGraph-style agent graphs. It is translated here into the very dict
a YAML workflow parses to, so the compiler, the engine and everything on top
(durability, history, the console) treat it as any workflow. Pure: data and
positions in, data and positions and diagnostics out.

- The context is a workflow variable ``context``; every node's output (an
  object) is merged into it with an ``export`` (``merge(context, response)``).
- An acyclic graph: a node is a task, an edge a dependency; conditional edges
  become the target's ``when`` (any taken incoming edge runs it: OR).
- A graph with a cycle: one ``do_while`` loop running one node per iteration.
  Every node exports ``last`` (its id); a router task starting each step
  exports ``current``: the routing expression (the first out-edge of ``last``
  whose condition holds); each node runs ``when`` it is ``current``, the loop
  goes on while the routing names a node; ``recursion_limit`` is the loop's
  ``max_iterations``.

Positions: the translated data gets a SourceMap whose paths point back to
where the graph document wrote the node, edge or field, so every diagnostic
the compiler finds in the translation names the graph document's line:col.
"""

from __future__ import annotations

import re
from typing import Any

from statemachine.diagnostics import Diagnostic, did_you_mean
from statemachine.yaml_source import SourceMap

Path = tuple[Any, ...]

DEFAULT_RECURSION_LIMIT = 25
CONTEXT = "context"  # the shared context's variable; a run's input is merged into it (Plan.input_into)
END = "__end__"  # what the routing gives when no out-edge of the current node holds
ROUTER_ID = "graph_route"  # a step's first task: names the node the step runs
LOOP_ID = "recursion_limit"  # the loop is named for its bound, so running over it says which bound
_GRAPH_KEYS = {"id", "name", "version", "changelog", "description", "context", "nodes", "edges", "entry",
               "recursion_limit"}
_NODE_SET_BY_GRAPH = ("depends_on", "when", "outputs", "trigger_rule")
_WHOLE = re.compile(r"^\s*\$\{(.*)\}\s*$", re.DOTALL)
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def is_graph(data: Any) -> bool:
    """A graph document: a mapping with ``graph:``, or with ``nodes`` and ``edges`` (and no workflow)."""
    return isinstance(data, dict) and "workflow" not in data and (
        "graph" in data or ("nodes" in data and "edges" in data))


def graph_functions(data: dict) -> list[tuple[Path, str, str]]:
    """``(path of its 'function', node id, function)`` of every function node of a graph document (one the
    translation accepted): what the edges resolve to callables when the graph is created."""
    root: Path = ("graph",) if "graph" in data else ()
    doc = data.get("graph") if "graph" in data else data
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    return [(root + ("nodes", i, "function"), str(node.get("id")), node["function"])
            for i, node in enumerate(nodes if isinstance(nodes, list) else ())
            if isinstance(node, dict) and isinstance(node.get("function"), str)]


def translate(data: dict, smap: SourceMap, filename: str) -> tuple[dict | None, SourceMap, list[Diagnostic]]:
    """The workflow data of a graph document, a source map for it, and the document's own problems
    (with any problem the translation is None: the compiler reports nothing further)."""
    return _Translation(data, smap, filename).run()


class _Translation:
    def __init__(self, data: dict, smap: SourceMap, filename: str):
        self.src, self.filename = smap, filename
        self.root: Path = ("graph",) if "graph" in data else ()
        self.doc = data.get("graph") if "graph" in data else data
        self.out = SourceMap(smap.text)
        self.diags: list[Diagnostic] = []

    def at(self, path: Path, message: str, key: bool = False) -> None:
        loc = self.src.find(self.root + path, prefer_key=key)
        self.diags.append(Diagnostic(self.filename, loc.line, loc.col, message))

    def point(self, new: Path, old: Path) -> None:
        """The translated ``new`` path (and everything under it not pointed elsewhere) is written at
        the document's ``old``."""
        old = self.root + old
        value, key = self.src.find(old), self.src.key(old)
        self.out.values.setdefault(new, value)
        self.out.keys.setdefault(new, key or value)

    def copy_under(self, new: Path, old: Path) -> None:
        """Every position written under the document's ``old`` appears under ``new`` too."""
        old = self.root + old
        for table_in, table_out in ((self.src.values, self.out.values), (self.src.keys, self.out.keys)):
            for path, loc in list(table_in.items()):
                if path[:len(old)] == old:
                    table_out[new + path[len(old):]] = loc

    # --- checking the document ---------------------------------------------------------

    def run(self) -> tuple[dict | None, SourceMap, list[Diagnostic]]:
        doc = self.doc
        if not isinstance(doc, dict):
            self.at((), "a graph must be a mapping with 'nodes' and 'edges'")
            return None, self.out, self.diags
        for key in doc:
            if key not in _GRAPH_KEYS:
                self.at((key,), f"unknown field '{key}' in the graph{did_you_mean(key, _GRAPH_KEYS)}", key=True)
        nodes = self.nodes(doc.get("nodes"))
        edges = self.edges(doc.get("edges"), nodes)
        context = doc.get("context", {})
        if not isinstance(context, dict):
            self.at(("context",), "the graph's 'context' must be an object")
        limit = doc.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self.at(("recursion_limit",), "'recursion_limit' must be a positive integer")
        entry = self.entry(doc, nodes, edges)
        if self.diags or entry is None:
            return None, self.out, self.diags
        cyclic = _has_cycle(list(nodes), edges)
        workflow: dict[str, Any] = {"metadata": {"id": doc.get("id", "graph")}}  # the compiler checks it
        self.point(("workflow", "metadata", "id"), ("id",) if "id" in doc else ())
        for field in ("name", "version", "changelog", "description"):  # version: a graph is registered like a workflow
            if field in doc:
                workflow["metadata"][field] = doc[field]
                self.point(("workflow", "metadata", field), (field,))
        workflow["variables"] = [{"name": "context", "type": "object", "default": context}]
        self.copy_under(("workflow", "variables", 0, "default"), ("context",))
        workflow["outputs"] = {"mappings": {"context": "${variables.context}"}}
        if cyclic:
            workflow["variables"] += [{"name": "last", "type": "string"}, {"name": "current", "type": "string"}]
            workflow["control_flow"] = {"loops": [self.loop(nodes, edges, entry, limit)]}
        else:
            workflow["tasks"] = [self.task(("workflow", "tasks", i), nodes[n], n, self.incoming(n, edges))
                                 for i, n in enumerate(nodes)]
        self.point(("workflow",), ())
        return {"workflow": workflow}, self.out, self.diags

    def nodes(self, raw: Any) -> dict[str, tuple[int, dict]]:
        found: dict[str, tuple[int, dict]] = {}
        if not isinstance(raw, list) or not raw:
            self.at(("nodes",), "a graph needs 'nodes': a non-empty list", key=True)
            return found
        for i, node in enumerate(raw):
            if not isinstance(node, dict):
                self.at(("nodes", i), "a node must be a mapping with 'id' and 'function' (or 'type')")
                continue
            node_id = node.get("id")
            if not isinstance(node_id, str) or not _ID.match(node_id) or node_id == END:
                self.at(("nodes", i, "id") if "id" in node else ("nodes", i),
                        "a node needs an 'id': letters, digits, '_' and '-', starting with a letter or '_'")
                continue
            if node_id in found:
                self.at(("nodes", i, "id"), f"duplicate node id '{node_id}' (first at node {found[node_id][0] + 1})")
                continue
            if ("function" in node) == ("type" in node):
                self.at(("nodes", i), f"node '{node_id}' needs exactly one of 'function' (a registered "
                        "callable, 'module:function') and 'type' (a task type)")
            elif "function" in node and (not isinstance(node["function"], str) or ":" not in node["function"]):
                self.at(("nodes", i, "function"), f"node '{node_id}': 'function' must be 'module:function'")
            if "function" in node and "config" in node:
                self.at(("nodes", i, "config"), f"node '{node_id}': a function node takes 'parameters', "
                        "not 'config'", key=True)
            for key in _NODE_SET_BY_GRAPH:
                if key in node:
                    self.at(("nodes", i, key), f"node '{node_id}': '{key}' is set by the graph's edges "
                            "and context, not on a node", key=True)
            found[node_id] = (i, node)
        return found

    def edges(self, raw: Any, nodes: dict) -> list[tuple[int, str, str, str | None]]:
        """(index, source, target, condition expression without ``${}``) of each well-formed edge."""
        found: list[tuple[int, str, str, str | None]] = []
        if not isinstance(raw, list):
            self.at(("edges",), "a graph needs 'edges': a list (it may be empty)", key=True)
            return found
        for i, edge in enumerate(raw):
            if not isinstance(edge, dict):
                self.at(("edges", i), "an edge must be a mapping with 'source' and 'target'")
                continue
            ends: list[str] = []
            for end in ("source", "target"):
                name = edge.get(end)
                if end not in edge:
                    self.at(("edges", i), f"edge {i + 1} needs a '{end}'")
                elif not isinstance(name, str):  # a list or a mapping is no node's id (nor hashable)
                    self.at(("edges", i, end), f"edge {i + 1}: '{end}' must be a node's id, a string")
                elif name not in nodes:
                    self.at(("edges", i, end), f"edge {i + 1}: unknown {end} node '{name}'"
                            f"{did_you_mean(str(name), nodes)}")
                else:
                    ends.append(str(name))
            for key in edge:
                if key not in ("source", "target", "condition"):
                    self.at(("edges", i, key), f"unknown field '{key}' in edge {i + 1}", key=True)
            condition = edge.get("condition")
            if condition is not None and not isinstance(condition, str):
                self.at(("edges", i, "condition"), f"edge {i + 1}: 'condition' must be an expression "
                        "such as \"${context.score > 0.8}\"")
                continue
            if len(ends) == 2:
                inner = None
                if condition is not None:
                    whole = _WHOLE.match(condition)
                    inner = whole.group(1) if whole else condition
                found.append((i, ends[0], ends[1], inner))
        return found

    def entry(self, doc: dict, nodes: dict, edges: list) -> str | None:
        if not nodes:
            return None
        if "entry" in doc:
            if not isinstance(doc["entry"], str):
                self.at(("entry",), "'entry' must be a node's id, a string")
                return None
            if doc["entry"] not in nodes:
                self.at(("entry",), f"entry node '{doc['entry']}' is not a node"
                        f"{did_you_mean(str(doc['entry']), nodes)}")
                return None
            return str(doc["entry"])
        targets = {target for _, _, target, _ in edges}
        roots = [n for n in nodes if n not in targets]
        if not roots:
            self.at(("nodes",), "no entry node: every node is an edge's target; name the first with 'entry'",
                    key=True)
            return None
        if len(roots) > 1 and _has_cycle(list(nodes), edges):
            self.at(("nodes",), f"a graph with a cycle runs one node at a time from one entry node, but "
                    f"{', '.join(repr(r) for r in roots)} have no incoming edge; name one with 'entry'", key=True)
            return None
        return roots[0]

    # --- translating -------------------------------------------------------------------

    def incoming(self, node_id: str, edges: list) -> list[tuple[int, str, str | None]]:
        return [(i, source, cond) for i, source, target, cond in edges if target == node_id]

    def task(self, path: Path, at: tuple[int, dict], node_id: str, incoming: list,
             when: str | None = None, extra_outputs: tuple[dict, ...] = ()) -> dict:
        i, node = at
        task = {k: v for k, v in node.items() if k not in ("function", "parameters")}
        self.copy_under(path, ("nodes", i))
        self.point(path, ("nodes", i))
        if "function" in node:
            params = node.get("parameters")
            task["type"] = "custom"
            task["config"] = {"handler": node["function"],
                              "parameters": {**(params if isinstance(params, dict) else {}),
                                             "context": "${variables.context}"}}
            self.point(path + ("config", "handler"), ("nodes", i, "function"))
            self.point(path + ("type",), ("nodes", i, "function"))
            self.copy_under(path + ("config", "parameters"), ("nodes", i, "parameters"))
            if params is not None and not isinstance(params, dict):
                self.at(("nodes", i, "parameters"), f"node '{node_id}': 'parameters' must be an object")
        if incoming:
            task["depends_on"] = sorted({source for _, source, _ in incoming})
            conditional = [(e, s, c) for e, s, c in incoming if c is not None]
            if conditional and when is None:
                if len(incoming) == 1:
                    when = conditional[0][2]
                else:  # any taken edge runs the node: its source completed and its condition holds
                    when = " || ".join(f"(tasks.{s}.status == 'COMPLETED'" + (f" && ({c})" if c else "") + ")"
                                       for _, s, c in incoming)
                self.point(path + ("when",), ("edges", conditional[0][0], "condition"))
        if when is not None:
            task["when"] = "${" + when + "}"
        task["outputs"] = [{"name": "context", "value": "${merge(variables.context, response)}", "export": True},
                           *extra_outputs]
        return task

    def loop(self, nodes: dict, edges: list, entry: str, limit: int) -> dict:
        route = _route(list(nodes), edges, entry)
        path = ("workflow", "control_flow", "loops", 0)
        for e, _, _, cond in edges:
            if cond is not None:
                self.point(path + ("condition",), ("edges", e, "condition"))
                self.point(path + ("tasks", 0, "outputs", 0, "value"), ("edges", e, "condition"))
                break
        self.point(path + ("max_iterations",), ("recursion_limit",) if "recursion_limit" in _as_dict(self.doc) else ())
        # The router picks the step's node once, when the step starts: were the nodes' whens the routing
        # itself, a node evaluated after another one exported would see the new 'last' and run in the same
        # step. A wait until a past time completes at once and runs nothing.
        router = {"id": ROUTER_ID, "type": "wait", "config": {"until": "2000-01-01T00:00:00Z"},
                  "outputs": [{"name": "current", "value": "${" + route + "}", "export": True}]}
        tasks = [self.task(path + ("tasks", i + 1), nodes[n], n, [], when=f"variables.current == '{n}'",
                           extra_outputs=({"name": "last", "value": n, "export": True},))
                 for i, n in enumerate(nodes)]
        for task in tasks:
            task["depends_on"] = [ROUTER_ID]
        return {"id": LOOP_ID, "type": "do_while", "condition": "${(" + route + f") != '{END}'" + "}",
                "max_iterations": limit, "tasks": [router, *tasks]}


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _route(order: list[str], edges: list, entry: str) -> str:
    """The expression naming the next node: after ``last``, its first out-edge whose condition holds;
    before any node (``last`` null), the entry; else END."""
    text = f"'{END}'"
    for node_id in reversed(order):
        choice = f"'{END}'"
        for _, _, target, cond in reversed([e for e in edges if e[1] == node_id]):
            choice = f"'{target}'" if cond is None else f"(({cond}) ? '{target}' : {choice})"
        text = f"variables.last == '{node_id}' ? {choice} : {text}"
    return f"variables.last == null ? '{entry}' : {text}"


def _has_cycle(order: list[str], edges: list) -> bool:
    succ: dict[str, list[str]] = {n: [] for n in order}
    for _, source, target, _ in edges:
        succ[source].append(target)
    state: dict[str, int] = {}
    for start in order:
        if start in state:
            continue
        stack = [(start, iter(succ[start]))]
        state[start] = 1
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return True
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return False


__all__ = ["CONTEXT", "DEFAULT_RECURSION_LIMIT", "END", "LOOP_ID", "ROUTER_ID", "is_graph", "translate"]
