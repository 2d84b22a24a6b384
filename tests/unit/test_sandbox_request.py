"""Building a code task's request (infra/sandbox/build.py): a string command is split before anything is
filled in, python code is never rendered, timeouts are bounded. Pure: no process is started."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.sandbox.build import code_request
from infra.sandbox.command import split_command
from infra.tasks.base import TaskFailure
from statemachine.expressions import EvalContext, ExpressionError
from statemachine.limits import MAX_CODE_TIMEOUT
from statemachine.plan import Node
from statemachine.scope import build_scope, task_view

CTX = EvalContext(now=datetime(2026, 1, 2, tzinfo=timezone.utc), seed=7)


class Run:
    run_id = "run-1"
    workflow_id = "wf"
    inputs = {"x": "a b --flag", "n": 3, "obj": {"k": [1, 2]}, "nothing": None}
    variables = {"limit": 5, "not-an-identifier": 1}


def request(kind: str, config: dict, timeout: float | None = None, extra: dict | None = None, modules=()):
    scope = build_scope(Run.inputs, Run.variables, {"prev": task_view("COMPLETED", {"v": 1}, None, 1)}, {},
                        extra_roots=extra)
    return code_request(Node(id="t", type=kind, config=config, timeout=timeout), scope, CTX, Run(), modules)


def argv(command) -> list[str]:
    return request("shell", {"command": command}).config["command"]


@given(st.text(alphabet="ab \t\n'\"\\;|$(){}", max_size=30))
def test_a_command_without_expressions_splits_exactly_as_shlex_does(command):
    while "${" in command:
        command = command.replace("${", "$")  # expressions are not shlex's business
    try:
        expected = shlex.split(command)
    except ValueError:
        with pytest.raises(ValueError):
            split_command(command)
        return
    assert ["".join(text for _, text in word) for word in split_command(command)] == expected


def test_a_value_is_filled_into_its_own_argument_after_the_split():
    assert argv("printf '%s' ${inputs.x}") == ["printf", "%s", "a b --flag"]
    assert argv('echo "n=${inputs.n} lim=${limit}" ${inputs.obj} ${inputs.nothing}') == [
        "echo", "n=3 lim=5", '{"k":[1,2]}', "null"]  # inside a string command a value reads as in any string
    assert argv("echo ${inputs['x']}${tasks.prev.output.v} '${format(inputs.n, \"0.00\")} x'") == [
        "echo", "a b --flag1", "3.00 x"]
    assert argv("echo $${HOME} '' \"\"") == ["echo", "${HOME}", "", ""]


def test_a_list_command_renders_each_item_as_one_argument():
    assert argv(["echo", "${inputs.x}", "${inputs.n}", "-${limit}-"]) == ["echo", "a b --flag", "3", "-5-"]
    for bad in (["echo", "${inputs.obj}"], ["echo", None], [], "", "  ", None, 3, "echo 'open"):
        with pytest.raises(TaskFailure) as caught:
            argv(bad)
        assert caught.value.error_type == "InvalidConfig", bad


def test_an_expression_error_in_a_command_is_the_engines_expression_error():
    for command in ("echo ${inputs.missing.deeper}", "echo ${(}", ["echo", "${nope.x}"]):
        with pytest.raises(ExpressionError):
            argv(command)


def test_shell_environment_working_dir_and_capture_output_are_rendered():
    made = request("shell", {"command": ["env"], "environment": {"A": "${inputs.n}", "PATH": None, "B": True},
                             "working_dir": "out/${inputs.n}", "capture_output": False})
    assert made.environment == {"A": "3", "B": "true"}
    assert made.config == {"command": ["env"], "working_dir": "out/3", "capture_output": False,
                           "unset_environment": ["PATH"]}
    with pytest.raises(TaskFailure):
        request("shell", {"command": ["env"], "environment": {"A": {"nested": 1}}})


def test_python_code_is_never_rendered_and_gets_the_documented_namespace():
    loop = {"iterator": "row", "item": {"id": 9}, "index": 0}
    made = request("python", {"code": "x = '${inputs.x}'"}, extra={"loop": loop, "error": {"type": "E"}})
    assert made.config == {"code": "x = '${inputs.x}'", "packages": False}
    assert made.namespace["inputs"] == Run.inputs and made.namespace["limit"] == 5
    assert "not-an-identifier" not in made.namespace and made.namespace["variables"] == Run.variables
    assert made.namespace["tasks"]["prev"]["output"] == {"v": 1}
    assert made.namespace["row"] == {"id": 9} and made.namespace["error"] == {"type": "E"}


def test_custom_config_is_rendered_and_carries_the_allowlist():
    made = request("custom", {"handler": "pkg.mod:run", "parameters": {"v": "${inputs.n}"}}, modules=("pkg",))
    assert made.config == {"handler": "pkg.mod:run", "parameters": {"v": 3}}
    assert made.custom_modules == ("pkg",)


@pytest.mark.parametrize("config_timeout, task_timeout, expected", [
    (None, None, 300.0), ("2s", None, 2.0), (None, 7, 7.0), ("2s", 7, 2.0), ("9s", 7, 7.0),
    ("1h", None, MAX_CODE_TIMEOUT), (None, 10_000, MAX_CODE_TIMEOUT),
])
def test_the_timeout_is_the_shorter_one_and_at_most_what_every_target_runs(config_timeout, task_timeout, expected):
    config = {"command": ["true"], **({"timeout": config_timeout} if config_timeout else {})}
    assert request("shell", config, timeout=task_timeout).timeout == expected
    assert request("python", {"code": "", **({"timeout": config_timeout} if config_timeout else {})},
                   timeout=task_timeout).timeout == expected


def test_the_request_survives_its_json_encoding():
    from infra.sandbox.request import CodeRequest

    made = request("shell", {"command": "echo ${inputs.x}", "environment": {"A": "1"}}, modules=("m",))
    assert CodeRequest.from_json(made.to_json()) == made
