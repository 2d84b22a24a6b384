"""A graph's function nodes resolved when the graph is created (infra/graph_functions.py, through
infra/sandbox/resolve.py): each names a callable of an allowed module, or the node is refused at its
line:col naming the node and the function; the modules are imported in a child process, never here."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from infra.graph_functions import check_graph_functions
from infra.sandbox.resolve import unresolved
from infra.sandbox.settings import SandboxSettings
from statemachine.diagnostics import WorkflowError
from statemachine.limits import DeploymentLimits

TOOLS = '''\
from os import getcwd
from pathlib import Path

Path("imported").write_text("yes")  # import-time code: says where it ran
THRESHOLD = 0.8


def plan(context):
    return {"planned": True}
'''
GRAPH = """\
nodes:
  - {id: plan, function: "acme_tools:plan"}
  - {id: act, function: "acme_tools:act"}
  - {id: limit, function: "acme_tools:THRESHOLD"}
  - {id: cwd, function: "acme_tools:getcwd"}
  - {id: gone, function: "acme_gone:plan"}
edges: []
"""


@pytest.fixture
def tools(monkeypatch):
    """acme_tools on the import path, where the task user (nobody, when the tests run as root) reads it."""
    home = Path(tempfile.mkdtemp(prefix="loopline-tools-"))
    os.chmod(home, 0o755)
    (home / "acme_tools.py").write_text(TOOLS)
    os.chmod(home / "acme_tools.py", 0o644)
    work = home / "work"
    work.mkdir(mode=0o777)
    os.chmod(work, 0o777)
    monkeypatch.syspath_prepend(str(home))
    monkeypatch.chdir(work)
    yield work
    shutil.rmtree(home, ignore_errors=True)


def test_each_function_that_names_no_callable_is_refused_at_its_node(tools):
    with pytest.raises(WorkflowError) as raised:
        check_graph_functions(GRAPH, "g.yaml", DeploymentLimits(("acme_tools", "acme_gone")), SandboxSettings())
    assert [str(d) for d in raised.value.diagnostics] == [
        "g.yaml:3:25: node 'act': function 'acme_tools:act' does not resolve to a callable: "
        "module 'acme_tools' has no 'act'",
        "g.yaml:4:27: node 'limit': function 'acme_tools:THRESHOLD' does not resolve to a callable: "
        "'acme_tools:THRESHOLD' is not callable",
        "g.yaml:5:25: node 'cwd': function 'acme_tools:getcwd' does not resolve to a callable: "
        "acme_tools:getcwd is defined in 'posix', not in an allowed module: name a function the allowed module "
        "defines itself",
        "g.yaml:6:26: node 'gone': function 'acme_gone:plan' does not resolve to a callable: "
        "cannot import 'acme_gone': ModuleNotFoundError: No module named 'acme_gone'"]


def test_the_modules_are_imported_in_a_child_process_not_in_this_one(tools):
    check_graph_functions(GRAPH.split("  - {id: act")[0] + "edges: []\n", "g.yaml", DeploymentLimits(("acme_tools",)),
                          SandboxSettings())
    assert "acme_tools" not in sys.modules
    assert not (tools / "imported").exists()  # the child ran in a private directory of its own


def test_a_module_the_deployment_does_not_allow_is_never_imported(tools):
    assert unresolved(["acme_tools:plan", "not a handler"], ("other",), SandboxSettings()) == {
        "acme_tools:plan": "module 'acme_tools' is not allowed by this deployment",
        "not a handler": "handler 'not a handler' is not of the form 'module:function'"}
    assert "acme_tools" not in sys.modules


def test_a_resolving_graph_and_a_workflow_file_pass(tools):
    check_graph_functions('graph:\n  nodes: [{id: p, function: "acme_tools:plan"}]\n  edges: []\n', "g.yaml",
                          DeploymentLimits(("acme_tools",)), SandboxSettings())
    check_graph_functions("workflow:\n  metadata: {id: w}\n", "w.yaml", DeploymentLimits(), SandboxSettings())
