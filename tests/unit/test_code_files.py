"""A python task's code read from a file next to the workflow (loopline/code_files.py)."""

from __future__ import annotations

import os

import pytest

from loopline.code_files import CodeFileError, inline_code_files
from statemachine.compiler import compile_workflow, validate_workflow

FLOW = """workflow:
  metadata: {id: files}
  tasks:
    - {id: clean, type: python, config: {code: %s}}
    - id: keep
      type: python
      config:
        code: |
          result = 'steps/clean.py'
    - {id: broken, type: python, config: {code: 5}}
"""


def test_the_file_is_inlined_on_its_own_line_so_positions_hold(tmp_path):
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "clean.py").write_text("rows = ['a']\nresult = {\"n\": len(rows), 'q': \"it's\"}\n")
    workflow = tmp_path / "flow.yaml"
    text = FLOW % "steps/clean.py"
    inlined = inline_code_files(text, str(workflow)).text
    assert inlined.count("\n") == text.count("\n")
    diagnostics = [str(d) for d in validate_workflow(inlined, "flow.yaml")]
    assert diagnostics == [str(d) for d in validate_workflow(text, "flow.yaml") if "names a file" not in d.message]
    plan = compile_workflow(inlined.replace("{code: 5}", "{code: 'result = 5'}"), "flow.yaml")
    assert plan.nodes["clean"].config["code"] == (tmp_path / "steps" / "clean.py").read_text()
    assert plan.nodes["keep"].config["code"] == "result = 'steps/clean.py'\n"  # a block scalar is source


def test_a_path_sent_as_text_is_refused_by_validation():
    [diagnostic] = [d for d in validate_workflow(FLOW % "steps/clean.py", "w.yaml") if "names a file" in d.message]
    assert (diagnostic.line, diagnostic.col) == (4, 48)


@pytest.mark.parametrize("name, why", [
    ("../outside.py", "inside the workflow file's directory"),
    ("/etc/outside.py", "inside the workflow file's directory"),
    ("steps/missing.py", "no such file"),
    ("steps/link.py", "symlink"),
    ("steps/big.py", "larger than"),
    ("steps/latin.py", "not UTF-8"),
])
def test_files_outside_the_directory_or_unreadable_are_refused_with_a_position(tmp_path, name, why):
    home = tmp_path / "wf"  # the workflow's directory; outside.py is next to it, not in it
    (home / "steps").mkdir(parents=True)
    (tmp_path / "outside.py").write_text("result = 'secret'")
    os.symlink(tmp_path / "outside.py", home / "steps" / "link.py")
    (home / "steps" / "big.py").write_text("#" * (1024 * 1024 + 1))
    (home / "steps" / "latin.py").write_bytes("r = 'caf\xe9'".encode("latin-1"))
    workflow = home / "flow.yaml"
    with pytest.raises(CodeFileError) as refused:
        inline_code_files(FLOW % name, str(workflow))
    assert str(refused.value).startswith(f"{workflow}:4:48: code '{name}': ") and why in str(refused.value)


def test_positions_after_the_inlined_code_on_its_line_map_back_to_the_file(tmp_path):
    (tmp_path / "a.py").write_text("result = 1\nprint('more than the path')\n")
    text = "x: {code: a.py, other: 1}\n"
    inlined = inline_code_files(text.replace("x:", "workflow: {tasks: [{id: t, type: python, config:")
                                .replace("1}\n", "1}}]}\n"), str(tmp_path / "w.yaml"))
    line = inlined.text.splitlines()[0]
    moved = line.index("other") + 1
    original = text.replace("x:", "workflow: {tasks: [{id: t, type: python, config:").index("other") + 1
    assert inlined.position(1, moved) == (1, original)
    assert inlined.position(1, 5) == (1, 5)  # before the edit: where it was


GRAPH_JSON = """{"graph": {"id": "counted", "entry": "count", "context": {"n": 1},
  "nodes": [{"id": "count", "type": "python", "config": {"code": "steps/count.py"}}],
  "edges": []}}
"""


def test_a_graph_nodes_code_file_is_inlined_in_json_and_yaml(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "count.py").write_text("result = {'n': context['n'] + 41}\n")
    (tmp_path / "graph.json").write_text(GRAPH_JSON)
    (tmp_path / "graph.yaml").write_text(
        "graph:\n  id: counted\n  entry: count\n  context: {n: 1}\n"
        "  nodes:\n    - {id: count, type: python, config: {code: steps/count.py}}\n  edges: []\n")
    (tmp_path / "top.json").write_text(json.dumps(json.loads(GRAPH_JSON)["graph"]))  # no `graph:` around it
    for name in ("graph.json", "graph.yaml", "top.json"):
        done = subprocess.run([sys.executable, "-m", "loopline.cli", "run", "--local", "--state", ":memory:",
                               name, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        view = json.loads(done.stdout)
        assert view["status"] == "COMPLETED" and view["outputs"]["context"] == {"n": 42}, view
