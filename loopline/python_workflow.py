"""A workflow written in Python, as the CLI reads it (docs/python-builder.md, "From the command line").

``loopline validate|run|compile|graph flow.py``, ``loopline workflows register flow.py`` and
``run --register child.py`` take a module that defines a Workflow: the one named ``workflow``, else
the only Workflow at its top level. ``python -m loopline.python_workflow flow.py`` prints its YAML.

Trust: the module is the CLI user's own code, like a Makefile or a setup.py, and reading it runs
it, with the user's rights. It runs in a child interpreter, never in the process that runs the
engine (``loopline run`` runs the engine and serves the API in its own process), so nothing the
module does when imported (threads, patches, signal handlers, environment changes) reaches the
engine: only its YAML text comes back, and it is compiled like any file. The API never loads
Python: ``POST /runs`` and ``POST /workflows`` take YAML, as their authors are not trusted.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import traceback
from typing import Any

TIMEOUT = 120  # seconds a module may take to build its workflow


class PythonWorkflowError(Exception):
    """The module could not give a workflow: one line, ``FILE:LINE: message``."""


def yaml_of(path: str, limit: int) -> str:
    """The YAML of the workflow ``path`` defines, built in a child interpreter (at most ``limit`` characters)."""
    if not os.path.isfile(path):
        why = "it is a directory" if os.path.isdir(path) else "no such file"
        raise PythonWorkflowError(f"{path}: cannot read: {why}")
    command = [sys.executable, "-m", "loopline.python_workflow", "--json", path]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise PythonWorkflowError(f"{path}: building its workflow took more than {TIMEOUT} s; stopped") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise PythonWorkflowError(f"{path}: building its workflow ended with exit status {done.returncode} "
                                  "and no answer") from None
    if "error" in answer:
        raise PythonWorkflowError(answer["error"])
    if len(answer["yaml"]) > limit:
        raise PythonWorkflowError(f"{path}: its workflow is larger than {limit:,} characters; refused")
    return str(answer["yaml"])


# ------------------------------------------------------------------ the child


def _workflow_in(path: str) -> Any:
    from loopline.builder import Workflow

    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own imports work, as with `python flow.py`
    namespace = runpy.run_path(path, run_name="__loopline__")  # not "__main__": its main block does not run
    named = namespace.get("workflow")
    if isinstance(named, Workflow):
        return named
    found = [value for name, value in namespace.items() if isinstance(value, Workflow) and not name.startswith("_")]
    if len(found) == 1:
        return found[0]
    if not found:
        raise PythonWorkflowError(f"{path}:1: defines no Workflow (write `workflow = Workflow(...)` at its top level)")
    names = ", ".join(sorted(value.id for value in found))
    raise PythonWorkflowError(f"{path}:1: defines {len(found)} Workflows ({names}): name the one to use `workflow`")


def _explain(path: str, error: BaseException) -> str:
    from loopline.builder import BuilderError

    if isinstance(error, (BuilderError, PythonWorkflowError)):
        return str(error)
    if isinstance(error, SyntaxError):
        return f"{error.filename or path}:{error.lineno or 1}:{error.offset or 1}: SyntaxError: {error.msg}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(frame.filename) == os.path.abspath(path)]
    line = frames[-1].lineno if frames else 1
    return f"{path}:{line}: {type(error).__name__}: {error}"


def main(argv: list[str]) -> int:
    as_json = argv[:1] == ["--json"]
    args = argv[1:] if as_json else argv
    if len(args) != 1:
        print("usage: python -m loopline.python_workflow [--json] FLOW.py", file=sys.stderr)
        return 2
    out, sys.stdout = sys.stdout, sys.stderr  # what the module prints must not mix with the answer
    try:
        answer = {"yaml": _workflow_in(args[0]).to_yaml()}
    except (Exception, SystemExit) as error:  # its own code's error, told as one line at its place
        answer = {"error": _explain(args[0], error)}
    finally:
        sys.stdout = out
    if as_json:
        print(json.dumps(answer))
    elif "error" in answer:
        print(answer["error"], file=sys.stderr)
    else:
        print(answer["yaml"], end="")
    return 2 if "error" in answer and not as_json else 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # threads the module left running must not keep the CLI waiting
