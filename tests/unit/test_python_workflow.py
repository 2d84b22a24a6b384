"""loopline/python_workflow.py, how the CLI reads a workflow written in Python: the module's YAML comes
from a child interpreter, bounded in time and size, and every way it can fail is one line."""

from __future__ import annotations

import pytest

from loopline import python_workflow
from loopline.python_workflow import PythonWorkflowError, yaml_of

FLOW = "from loopline import Workflow\nworkflow = Workflow('x').python('a', 'result = 1')\n"


def test_the_yaml_of_a_module(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    assert yaml_of(str(tmp_path / "flow.py"), 10_000).startswith("workflow:\n  metadata:\n    id: x\n")


def test_a_module_that_takes_too_long_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(python_workflow, "TIMEOUT", 1)
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(30)\n", encoding="utf-8")
    with pytest.raises(PythonWorkflowError, match=r"slow.py: building its workflow took more than 1 s; stopped"):
        yaml_of(str(tmp_path / "slow.py"), 10_000)


def test_a_workflow_larger_than_the_limit_is_refused(tmp_path):
    (tmp_path / "flow.py").write_text(FLOW, encoding="utf-8")
    with pytest.raises(PythonWorkflowError, match="its workflow is larger than 50 characters; refused"):
        yaml_of(str(tmp_path / "flow.py"), 50)


@pytest.mark.parametrize("name, why", [("missing.py", "no such file"), ("folder.py", "it is a directory")])
def test_what_is_not_a_file_is_refused_before_anything_runs(tmp_path, name, why):
    (tmp_path / "folder.py").mkdir()
    with pytest.raises(PythonWorkflowError, match=f"{name}: cannot read: {why}"):
        yaml_of(str(tmp_path / name), 10_000)


def test_a_module_that_kills_its_interpreter_is_told(tmp_path):
    (tmp_path / "dies.py").write_text("import os\nos._exit(9)\n", encoding="utf-8")
    with pytest.raises(PythonWorkflowError, match="dies.py: building its workflow ended with exit status 9"):
        yaml_of(str(tmp_path / "dies.py"), 10_000)


def test_threads_it_leaves_running_do_not_keep_the_cli_waiting(tmp_path):
    (tmp_path / "flow.py").write_text("import threading, time\nthreading.Thread(target=time.sleep, args=(600,))"
                                      ".start()\n" + FLOW, encoding="utf-8")
    assert yaml_of(str(tmp_path / "flow.py"), 10_000).startswith("workflow:")
