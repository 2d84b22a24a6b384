"""A graph's functions resolved when the graph is created (docs/graph-form.md, "Functions"): POST
/graph/create and ``loopline validate``/``run`` refuse a node whose ``function`` names no callable, with
the node's id, the function and its line:col, instead of failing the run when the node is reached.

The compiler has already refused a function outside the deployment's allowlist (no I/O there); what is
left needs the modules themselves, so it is asked of the sandbox (infra/sandbox/resolve.py): the task
runner's resolution, in a child process, never an import in the engine.
"""

from __future__ import annotations

from statemachine.diagnostics import Diagnostic, WorkflowError
from statemachine.graph_form import graph_functions, is_graph
from statemachine.limits import DeploymentLimits
from statemachine.yaml_source import load_yaml

from .sandbox.resolve import ResolveError, unresolved
from .sandbox.settings import SandboxSettings

__all__ = ["ResolveError", "check_graph_functions"]


def check_graph_functions(text: str, filename: str, limits: DeploymentLimits, settings: SandboxSettings) -> None:
    """Nothing when ``text`` is no graph or each of its function nodes names a callable; else WorkflowError
    with one diagnostic per node. ResolveError when the check could not be made (the deployment's fault)."""
    data, smap, problems = load_yaml(text, filename)
    if problems or not is_graph(data):
        return
    nodes = graph_functions(data)
    if not nodes:
        return
    why = unresolved([function for _, _, function in nodes], limits.custom_modules, settings)
    found = []
    for path, node_id, function in nodes:
        if function in why:
            loc = smap.find(path)
            found.append(Diagnostic(filename, loc.line, loc.col, f"node '{node_id}': function '{function}' does "
                                                                 f"not resolve to a callable: {why[function]}"))
    if found:
        raise WorkflowError(found)
