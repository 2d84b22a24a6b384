"""What the `loopline` command reads: workflow files (with their code files inlined, or built by a
``.py`` file), and ``--input``. A problem is a UsageError (one line, exit 2) or the file's own
diagnostics at FILE:LINE:COL (exit 2), never a traceback."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from .reading import Unreadable, read_bounded

EXIT_INVALID = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


def _read(path: str, limit: int, unit: str, what: str, located: bool = False) -> str:
    try:
        return read_bounded(path, limit, unit, what, located)
    except Unreadable as error:
        raise UsageError(str(error)) from error


def read_workflow(path: str, report_to=None) -> str:
    """The workflow file's text, with each python task's ``code`` that names a file replaced by the file's
    contents (loopline/code_files.py): what the engine is given carries its code."""
    return inlined_file(path, report_to).text


def inlined_file(path: str, report_to=None):
    from infra.service import MAX_SOURCE

    from .code_files import CodeFileError, inline_code_files

    if path.endswith(".py"):  # a workflow built in Python: its YAML (loopline/python_workflow.py)
        from .python_workflow import PythonWorkflowError, yaml_of

        try:
            text = yaml_of(path, MAX_SOURCE)
        except PythonWorkflowError as error:
            print(error, file=report_to or sys.stderr)
            raise SystemExit(EXIT_INVALID) from None
    else:
        text = _read(path, MAX_SOURCE, "characters", "the workflow", located=True)  # what POST /runs accepts
    try:
        return inline_code_files(text, path)
    except CodeFileError as error:
        print(error, file=sys.stderr)
        raise SystemExit(EXIT_INVALID) from None


def load_plan(path: str, report_to=None, text=None):
    import os

    from infra.graph_functions import ResolveError, check_graph_functions
    from infra.sandbox.settings import SandboxSettings
    from infra.wiring import deployment_limits
    from statemachine.compiler import compile_workflow
    from statemachine.diagnostics import WorkflowError

    from .code_files import Inlined

    inlined = inlined_file(path, report_to) if text is None else text if isinstance(text, Inlined) else Inlined(text)
    name = f"{path}[yaml]" if path.endswith(".py") else path  # positions in the YAML it built
    try:
        # LOOPLINE_CUSTOM_MODULES and LOOPLINE_PYTHON_PACKAGES, as a deployment's
        plan = compile_workflow(inlined.text, name, deployment_limits())
        if plan.input_into is not None:  # a graph's function nodes must name callables (as the task runner resolves)
            check_graph_functions(inlined.text, name, deployment_limits(), SandboxSettings.from_env(os.environ))
        return plan
    except ResolveError as error:
        raise UsageError(f"{path}: the graph's functions could not be checked: {error}") from error
    except WorkflowError as error:
        for diagnostic in error.diagnostics:
            line, col = inlined.position(diagnostic.line, diagnostic.col)  # as written, before code was inlined
            print(replace(diagnostic, line=line, col=col), file=report_to or sys.stderr)
        raise SystemExit(EXIT_INVALID) from None


def parse_input(raw: str | None) -> dict[str, Any] | None:
    from statemachine import json_values
    from statemachine.limits import MAX_INPUT

    if raw is None:
        return None
    source = "--input"
    if raw.startswith("@"):
        source = raw[1:]
        raw = _read(source, MAX_INPUT, "bytes", "the input")
    elif len(raw.encode("utf-8", "surrogatepass")) > MAX_INPUT:
        raise UsageError(f"--input is larger than {MAX_INPUT:,} bytes; refused")
    try:
        value = json_values.loads(raw)  # NaN, Infinity and 1e999 are not JSON numbers
    except ValueError as error:
        raise UsageError(f"{source}: invalid JSON: {error}") from error
    if not isinstance(value, dict):
        raise UsageError(f"{source}: the input must be a JSON object")
    return value
