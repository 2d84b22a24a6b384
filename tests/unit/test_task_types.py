"""The one list of task types (statemachine/task_types.py) and their runtimes (infra/tasks/types/): each type
once, a type of one's own validated by the compiler and run by the engine, and no provider reading the
environment behind the wiring's back."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from infra.tasks.base import TaskFailure
from infra.tasks.registry import TaskTypes
from infra.tasks.runtime import Provider, TaskCall, TaskRuntime
from infra.tasks.settings import TaskSettings
from loopline.memory.local_mode import LocalMode
from statemachine.compiler import compile_workflow, validate_workflow
from statemachine.task_types import TASK_TYPES, TaskCatalogue, TaskTypeSpec
from tests.unit.test_engine_semantics import drive
from tests.unit.test_task_settings import run_type

TASKS = Path(__file__).resolve().parents[2] / "infra" / "tasks"


# ------------------------------------------------------------ one list, each type once


def test_the_list_names_each_type_once_and_refuses_a_second_entry():
    names = TASK_TYPES.names
    assert len(names) == len(set(names)) == 14
    assert TASK_TYPES.code_types == ("python", "shell", "custom")
    assert TASK_TYPES.durable_types == ("wait", "callback", "approval")
    with pytest.raises(ValueError, match="task type 'http' is listed twice"):
        TASK_TYPES.with_types(TaskTypeSpec("http"))
    with pytest.raises(ValueError, match="task type 'a' is listed twice"):
        TaskCatalogue((TaskTypeSpec("a"), TaskTypeSpec("b"), TaskTypeSpec("a")))
    with pytest.raises(ValueError, match="cannot both run code and wait durably"):
        TaskTypeSpec("odd", runs_code=True, durable=True)


def test_every_type_that_runs_has_one_runtime_module_and_no_module_is_orphaned():
    types = TaskTypes(TaskSettings())
    runnable = {spec.name for spec in TASK_TYPES if not spec.durable}
    assert set(types.providers.runtimes) == runnable
    modules = {p.stem for p in (TASKS / "types").glob("*.py")} - {"__init__"}
    assert modules == {spec.name for spec in TASK_TYPES if spec.in_worker} | {"code"}


def test_a_durable_type_is_the_engines_own_and_not_run_here():
    error = _failure(lambda: run_type("wait", {"duration": "1s"}))
    assert error.error_type == "UnsupportedTaskType"


# ------------------------------------------------------------ a type of one's own


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: object = None

    @model_validator(mode="after")
    def _needs_text(self) -> EchoConfig:
        if self.text is None:
            raise PydanticCustomError("echo", "an echo task needs 'config.text'")
        return self


ECHO = TaskTypeSpec("echo", EchoConfig)


def _echo(call: TaskCall) -> dict:
    shout = call.provider()
    return {"said": shout(str(call.config["text"])), "task": call.meta.task_id}


ECHO_RUNTIME = TaskRuntime(run=_echo, providers=(
    Provider("upper", lambda settings: str.upper, default_on=("aws", "local")),
    Provider("plain", lambda settings: str),
))

WORKFLOW = """
workflow:
  metadata: {id: echoes}
  inputs: {defaults: {name: ada}}
  tasks:
    - {id: greet, type: echo, config: {text: "hello ${inputs.name}"}}
    - {id: after, type: python, depends_on: [greet], config: {code: "result = tasks['greet']['output']['said']"}}
"""


def test_a_type_of_ones_own_is_validated_by_the_compiler_with_the_same_clear_errors():
    catalogue = TASK_TYPES.with_types(ECHO)
    assert [str(d) for d in validate_workflow(WORKFLOW.replace('text: "hello ${inputs.name}"', "texte: 1"),
                                              "w.yaml", task_types=catalogue)] == [
        "w.yaml:6:39: an echo task needs 'config.text'"]
    unknown = [str(d) for d in validate_workflow(WORKFLOW, "w.yaml")]
    assert unknown == [f"w.yaml:6:25: unknown task type 'echo' (expected one of: {', '.join(TASK_TYPES.names)})"]
    assert compile_workflow(WORKFLOW, "w.yaml", task_types=catalogue).nodes["greet"].type == "echo"


def test_a_registered_type_is_run_by_the_runtime_with_its_providers(monkeypatch):
    types = TaskTypes(TaskSettings()).with_type(ECHO, ECHO_RUNTIME)
    assert run_type("echo", {"text": "hi"}, types=types) == {"said": "HI", "task": "t1"}
    chosen = TaskTypes(TaskSettings(providers="echo=plain")).with_type(ECHO, ECHO_RUNTIME)
    assert run_type("echo", {"text": "hi"}, types=chosen) == {"said": "hi", "task": "t1"}
    wrong = TaskTypes(TaskSettings(providers="echo=loud")).with_type(ECHO, ECHO_RUNTIME)
    error = _failure(lambda: run_type("echo", {"text": "hi"}, types=wrong))
    assert (error.error_type, error.message) == ("ProviderConfigError",
                                                 "unknown 'echo' provider 'loud'; available: plain, upper")
    with pytest.raises(ValueError, match="listed twice"):
        types.with_type(ECHO, ECHO_RUNTIME)


def test_a_registered_type_runs_in_a_workflow_through_the_engine(clock):
    types = TaskTypes(TaskSettings()).with_type(ECHO, ECHO_RUNTIME)
    local = LocalMode(clock=clock, inline_code=True, task_types=types)
    try:
        plan = compile_workflow(WORKFLOW, "w.yaml", task_types=types.catalogue)
        view = drive(local, local.engine.start_run(plan, {}), clock)
    finally:
        local.close()
    assert view["status"] == "COMPLETED", view
    assert view["tasks"]["after"]["output"] == "HELLO ADA"


# ------------------------------------------------------------ settings come from the wiring


def _reads_the_environment(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``/``os.getenv`` or import ``environ``/``getenv`` from os."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "getenvb"):
            found.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in ("environ", "environb", "getenv", "getenvb") for alias in node.names):
            found.append(node.lineno)
    return found


def test_no_module_below_the_wiring_reads_the_environment():
    """The core, the engine, the adapters, the task types and the sandbox get their settings handed down;
    only infra/wiring.py (and the handlers and tools above it) reads the process environment."""
    repo = TASKS.parents[1]
    below = [path for folder in ("statemachine", "infra") for path in sorted((repo / folder).rglob("*.py"))
             if path != repo / "infra" / "wiring.py"]
    assert len(below) > 100, "the layers are where this test looks"
    readers = {str(path.relative_to(repo)): lines for path in below
               if (lines := _reads_the_environment(ast.parse(path.read_text(), str(path))))}
    assert readers == {}, f"read settings in the wiring (TaskSettings/SandboxSettings.from_env) instead: {readers}"


def test_the_check_would_see_a_module_that_reads_the_environment():
    assert _reads_the_environment(ast.parse("import os\nx = os.environ.get('A')\n")) == [2]
    assert _reads_the_environment(ast.parse("from os import getenv\n")) == [1]
    assert _reads_the_environment(ast.parse("import os\nx = os.path.join('a')\n")) == []


def test_settings_are_read_once_from_the_environment_given(monkeypatch):
    env = {"LOOPLINE_PROVIDERS": "llm=openai", "LOOPLINE_OPENAI_BASE_URL": "https://llm.example/v1",
           "LOOPLINE_DB_MAIN": "sqlite://:memory:", "LOOPLINE_SMS_ENABLED": "false", "OTHER": "x"}
    settings = TaskSettings.from_env(env)
    assert settings.llm.openai_base_url == "https://llm.example/v1"
    assert dict(settings.databases) == {"LOOPLINE_DB_MAIN": "sqlite://:memory:"}
    assert settings.messaging.sms_enabled is False
    types = TaskTypes(settings)
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=local")  # later changes to the process do not reach it
    assert types.provider_name("llm") == "openai"
    assert "sqlite" not in repr(settings)  # a URL may hold a password


def _failure(call) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        call()
    return caught.value


def test_the_environment_of_this_process_is_not_needed_to_run_a_type(monkeypatch):
    for name in [n for n in os.environ if n.startswith("LOOPLINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "this=is not read")
    assert run_type("sms", {"to": "+15551234567", "body": "hi"},
                    types=TaskTypes(TaskSettings()))["message_id"].startswith("local-")
