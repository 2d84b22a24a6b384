"""The CLI takes a workflow written in Python (docs/python-builder.md) wherever it takes a YAML file: a
subprocess as a user starts it, its exit code and output; the module runs in a child interpreter, never
in the engine's process; and a built workflow reaches a running `loopline dev` as its YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopline import Workflow
from tests.doc_blocks import blocks, files
from tests.e2e.cli_process import Running, call
from tests.e2e.test_cli import loopline
from tests.e2e.test_dev_server import LOOPLINE, dev_server, get_json

FLOW = """
    import os
    from loopline import Workflow

    print("building")  # what the module prints must not reach the command's stdout
    workflow = Workflow("sums", version="1.0.0")
    workflow.input("numbers", "array", required=True)
    workflow.python("add", 'result = sum(inputs["numbers"])')
    workflow.for_each("each", "${inputs.numbers}", lambda b: b.python("double", "result = item * 2"))
    workflow.output("total", "${tasks.add.output}")
    workflow.output("doubled", "${tasks.each.output}")
    with open(os.environ["PID_FILE"], "w") if "PID_FILE" in os.environ else open(os.devnull, "w") as out:
        out.write(f"{os.getpid()} {os.getppid()}")
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def _positionless(plan_json: str) -> dict:
    plan = json.loads(plan_json)
    for node in plan["nodes"].values():
        node.pop("line")
        node.pop("col")
    return plan


def test_validate_compile_and_run_a_python_file(tmp_path):
    flow = write(tmp_path, "sums.py", FLOW)
    done = loopline("validate", flow)
    assert (done.returncode, done.stdout) == (0, "ok\n") and "building" in done.stderr
    compiled = loopline("compile", flow)
    assert compiled.returncode == 0
    saved = write(tmp_path, "sums.yaml", _load(flow).to_yaml())  # the YAML the builder gives, compiled as a file
    assert _positionless(compiled.stdout) == _positionless(loopline("compile", saved).stdout)
    run = loopline("run", flow, "--local", "--state", ":memory:", "--json", "--input", '{"numbers": [1, 2, 3]}')
    assert run.returncode == 0, run.stderr
    view = json.loads(run.stdout)
    assert view["status"] == "COMPLETED" and view["outputs"] == {"total": 6, "doubled": [2, 4, 6]}


def _load(path: str) -> Workflow:
    namespace: dict = {}
    exec(compile(Path(path).read_text(encoding="utf-8"), path, "exec"), namespace)
    return namespace["workflow"]


def test_the_module_runs_in_a_child_of_the_cli_never_in_the_engine_s_process(tmp_path, monkeypatch):
    flow = write(tmp_path, "sums.py", FLOW)
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([str(Path(sys.executable).with_name("loopline")), "run", flow, "--local", "--state",
                                ":memory:", "--json", "--input", '{"numbers": [1]}'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(root)})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    child, parent = map(int, pid_file.read_text().split())
    assert parent == process.pid and child != process.pid


@pytest.mark.parametrize("source, line", [
    ("from loopline import Workflow\nwf = Workflow('x')\nwf.python('a', 'result = 1', after='b')\n",
     "flow.py:3: task 'a' depends on 'b', which is no task or block of workflow 'x'"),
    ("from loopline import Workflow\nwf = Workflow('x')\nwf.python('a', 'r = 1')\nwf.python('a', 'r = 2')\n",
     "flow.py:4: task id 'a' is already used by the task added at flow.py:3"),
    ("import json\n\nconfig = json.loads('{}')\nconfig['missing']\n", "flow.py:4: KeyError: 'missing'"),
    ("def broken(:\n    pass\n", "flow.py:1:12: SyntaxError: invalid syntax"),
    ("x = 1\n", "flow.py:1: defines no Workflow (write `workflow = Workflow(...)` at its top level)"),
    ("from loopline import Workflow\na = Workflow('a')\nb = Workflow('b')\n",
     "flow.py:1: defines 2 Workflows (a, b): name the one to use `workflow`"),
    ("import sys\nsys.exit(3)\n", "flow.py:2: SystemExit: 3"),
])
def test_a_mistake_in_the_module_is_one_line_at_its_place(tmp_path, monkeypatch, source, line):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flow.py").write_text(source, encoding="utf-8")
    validate = loopline("validate", "flow.py")  # validate's findings are its output
    assert (validate.returncode, validate.stdout) == (2, line + "\n"), validate.stderr
    run = loopline("run", "flow.py", "--local", "--state", ":memory:")
    assert (run.returncode, run.stdout) == (2, "") and run.stderr.endswith(line + "\n")
    assert "Traceback" not in validate.stderr + run.stderr


def test_what_the_compiler_finds_is_located_in_the_emitted_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "flow.py", """
        from loopline import Workflow
        workflow = Workflow("x").python("a", "result = 1", when="${lenn(inputs)}")
    """)
    done = loopline("validate", "flow.py")
    yaml_text = loopline_module_yaml(tmp_path)
    line = next(n for n, row in enumerate(yaml_text.splitlines(), 1) if "lenn" in row)
    assert done.returncode == 2 and done.stdout.startswith(f"flow.py[yaml]:{line}:")
    assert "unknown function 'lenn'" in done.stdout


def loopline_module_yaml(cwd) -> str:
    return subprocess.run([sys.executable, "-m", "loopline.python_workflow", "flow.py"], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def test_run_registers_a_child_written_in_python(tmp_path):
    child = write(tmp_path, "child.py", """
        from loopline import Workflow
        workflow = Workflow("child", version="1.0.0").python("hi", "result = 'hi from the child'")
        workflow.output("said", "${tasks.hi.output}")
    """)
    parent = write(tmp_path, "parent.py", """
        from loopline import Workflow
        workflow = Workflow("parent").sub_workflow("call", "child@1.0.0")
        workflow.output("child_said", "${tasks.call.output.said}")
    """)
    run = loopline("run", parent, "--register", child, "--local", "--state", ":memory:", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outputs"] == {"child_said": "hi from the child"}


@pytest.fixture(scope="module")
def server():
    yield from dev_server([LOOPLINE])


def test_a_built_workflow_is_registered_and_started_on_a_dev_server(server, tmp_path):
    flow = write(tmp_path, "sums.py", FLOW)
    registered = loopline("workflows", "register", flow, "--url", server)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["workflow_id"] == "sums"
    wf = Workflow("greeting", version="1.0.0").python("hello", "result = 'hello'")
    wf.output("said", "${tasks.hello.output}")
    status, answer = wf.register(server)
    assert status == 201, answer
    assert wf.register(server)[0] == 200  # the same content again
    status, answer = wf.start(server)
    assert status == 201, answer
    deadline = time.monotonic() + 60
    while (view := get_json(f"{server}/runs/{answer['run_id']}")[1])["status"] != "COMPLETED":
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    assert view["outputs"] == {"said": "hello"}


def test_the_page_s_register_and_start_block_runs_as_written(server, tmp_path, monkeypatch):
    """docs/python-builder.md's ``# run:`` block, against a dev server at ``url``, beside its invoices.py."""
    page = blocks("python-builder.md")
    [snippet] = [text for kind, text in page if kind == "python" and text.startswith("# run: ")]
    for name, text in files(page, "python").items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"url": server}
    exec(compile(snippet, "python-builder.md", "exec"), namespace)
    status, view = get_json(f"{server}/runs/{namespace['run_id']}")
    assert status == 200 and view["workflow_id"] == "invoice_batch"
    approvals = wait_for_approvals(server, namespace["run_id"])
    assert approvals[0]["approver"] == "manager@example.com"


def wait_for_approvals(server, run_id):
    deadline = time.monotonic() + 60
    while not (approvals := get_json(f"{server}/runs/{run_id}")[1]["approvals"]):
        assert time.monotonic() < deadline, "no approval asked"
        time.sleep(0.2)
    return approvals


def test_the_seed_s_expense_report_in_python_runs_to_its_end_when_approved():
    """examples/expense_report.py as its docstring runs it (with --local): the manager's link decides."""
    running = Running(["run", "examples/expense_report.py", "--local", "--state", ":memory:", "--json"])
    try:
        status, body = call(running.link("approval"), {"decision": "APPROVED", "comments": "ok"})
        assert status == 200, body
        code, out = running.finish()
    finally:
        running.kill()
    view = json.loads(out)
    assert (code, view["status"]) == (0, "COMPLETED"), "".join(running.stderr)
    assert view["outputs"] == {"decision": "APPROVED",
                               "closed": {"report": "exp-test-123", "closed_after": "APPROVED"}}
    assert view["tasks"]["record_payment"]["status"] == "COMPLETED"
    assert view["tasks"]["notify_employee_denied"]["status"] == "SKIPPED"


def test_a_python_task_s_code_file_is_read_beside_the_module(tmp_path):
    """``python("clean", "steps/clean.py")``: the code file is read next to flow.py, as next to a YAML file."""
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "clean.py").write_text('result = {"cleaned": inputs["x"].strip()}\n', encoding="utf-8")
    flow = write(tmp_path, "flow.py", """
        from loopline import Workflow
        workflow = Workflow("files").python("clean", "steps/clean.py")
        workflow.output("cleaned", "${tasks.clean.output.cleaned}")
    """)
    run = loopline("run", flow, "--local", "--state", ":memory:", "--json", "--input", '{"x": " hi "}')
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outputs"] == {"cleaned": "hi"}
