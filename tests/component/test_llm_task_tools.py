"""Tool tasks (``tools: [{task: <id>}]``) run by the engine: the local stand-in calls each, the task runs
through its own type with the model's arguments as ``args``, only as a tool (never in the flow), and the
llm task waits for what its tools read. LocalMode, as `loopline run --local` runs it."""

from __future__ import annotations

from infra.clock import ManualClock
from loopline.memory.local_mode import LocalMode
from statemachine.compiler import compile_workflow
from tests.unit.test_compiler import src
from tests.unit.test_engine_semantics import drive
from tests.unit.test_task_settings import server, task_env  # noqa: F401

TOOLS = """
    workflow:
      metadata: {id: tool_tasks}
      tasks:
        - id: base
          type: python
          config: {code: "result = 10"}
        - id: ask
          type: llm
          config:
            prompt: "Add 5 to the base, shout, and look it up."
            max_tool_rounds: 1
            tools:
              - task: add_base
                parameters: {type: object, properties: {n: {type: integer, default: 5}}, required: [n]}
              - name: shout
                task: echo
                parameters: {type: object, properties: {text: {type: string, default: "hi there"}}}
              - task: lookup
                parameters: {type: object, properties: {key: {type: string, default: "k1"}}}
        - id: add_base
          type: python
          description: "Adds n to the base"
          depends_on: [base]
          config: {code: "result = args['n'] + tasks['base']['output']"}
        - id: echo
          type: shell
          config: {command: "echo ${args.text}"}
        - id: lookup
          type: http
          config: {url: "URL/items/${args.key}"}
    """


def run(text: str) -> dict:
    clock = ManualClock()
    mode = LocalMode(clock=clock, inline_code=True)
    run_id = mode.engine.start_run(compile_workflow(src(text), "wf.yaml"), {})
    return drive(mode, run_id, clock)


def test_each_tool_task_runs_with_the_models_arguments_and_only_as_a_tool(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")
    server.json("GET", "/items/k1", {"price": 7})
    plan = compile_workflow(src(TOOLS.replace("URL", server.url)), "wf.yaml")
    assert plan.nodes["ask"].deps == ("base",)  # it waits for what its tools read
    assert {n: plan.nodes[n].role for n in ("add_base", "echo", "lookup")} == dict.fromkeys(
        ("add_base", "echo", "lookup"), "tool")
    view = run(TOOLS.replace("URL", server.url))
    assert view["status"] == "COMPLETED", view
    calls = view["tasks"]["ask"]["output"]["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("add_base", {"n": 5}), ("shout", {"text": "hi there"}), ("lookup", {"key": "k1"})]
    assert calls[0]["result"] == 15
    assert calls[1]["result"]["stdout"].strip() == "hi there"
    assert calls[2]["result"]["data"] == {"price": 7}
    assert [r["path"] for r in server.requests] == ["/items/k1"]  # once, as a tool; never in the flow
    assert {n: view["tasks"][n]["status"] for n in ("add_base", "echo", "lookup")} == dict.fromkeys(
        ("add_base", "echo", "lookup"), "SKIPPED")


def test_a_failing_tool_task_is_an_error_the_model_reads(task_env):  # noqa: F811
    view = run("""
        workflow:
          metadata: {id: failing_tool}
          tasks:
            - id: ask
              type: llm
              config:
                prompt: "p"
                tools: [{task: boom}, {task: missing_arg}]
            - id: boom
              type: python
              config: {code: "raise ValueError('no')"}
            - id: missing_arg
              type: http
              config: {url: "https://example.com/${args.nothing}"}
        """)
    assert view["status"] == "COMPLETED", view
    errors = [c["error"] for c in view["tasks"]["ask"]["output"]["tool_calls"]]
    assert errors[0]["type"] == "ValueError"
    assert errors[1]["type"] == "ExpressionError" and "nothing" in errors[1]["message"]


CODE_TOOL = """
    workflow:
      metadata: {id: code_tool}
      tasks:
        - id: ask
          type: llm
          config:
            prompt: "Double 4"
            tools: [{task: double, parameters: {type: object, properties: {n: {type: integer, default: 4}}}}]
        - {id: double, type: python, config: {code: "result = args['n'] * 2"}}
    """


def test_on_aws_code_tools_are_refused_unless_the_deployment_lets_the_worker_run_them(monkeypatch):
    """The worker has a role and the runtime API the task runner's sandbox does not: deny by default."""
    from infra.tasks.registry import TaskTypes

    env = {"LOOPLINE_PROVIDER_DEFAULTS": "aws", "LOOPLINE_PROVIDERS": "llm=local"}
    for extra, expected in (({}, "FAILED"), ({"LOOPLINE_CODE_TOOLS_IN_WORKER": "true"}, "COMPLETED")):
        clock = ManualClock()
        mode = LocalMode(clock=clock, inline_code=True, task_types=TaskTypes.from_env({**env, **extra}))
        try:
            view = drive(mode, mode.engine.start_run(compile_workflow(src(CODE_TOOL), "wf.yaml"), {}), clock)
        finally:
            mode.close()
        assert view["tasks"]["ask"]["status"] == expected, view["tasks"]["ask"]
        if expected == "FAILED":
            assert view["tasks"]["ask"]["error"]["type"] == "ToolNotAllowed"
            assert "double" in view["tasks"]["ask"]["error"]["message"]
        else:
            assert view["tasks"]["ask"]["output"]["tool_calls"][0]["result"] == 8
