"""An llm task's ``tools`` as written (statemachine/llm_tools.py, statemachine/admission.py): each mistake is
refused at validation with its position, before a run."""

from __future__ import annotations

import pytest

from statemachine.admission import plan_problems
from statemachine.compiler import compile_workflow
from statemachine.limits import DeploymentLimits
from tests.unit.test_compiler import HEADER, errors, src

ALLOWED = DeploymentLimits.from_setting("acme")


def llm(config: str) -> str:
    return HEADER + """
          tasks:
            - id: ask
              type: llm
              config:
                prompt: "p"
""" + "\n".join("                " + line for line in src(config).splitlines())


def test_function_tools_of_an_allowed_module_are_valid():
    text = llm("""
        max_tool_rounds: 3
        tools:
          - name: lookup
            description: "Finds a customer"
            function: "acme.crm:lookup"
            parameters: {type: object, properties: {email: {type: string}}, required: [email]}
          - {name: now, function: "acme.clock:now"}
    """)
    assert errors(text, ALLOWED) == []
    plan = compile_workflow(src(text), "wf.yaml", ALLOWED)
    assert plan.nodes["ask"].config["tools"][1] == {"name": "now", "function": "acme.clock:now"}
    assert plan_problems(plan, ALLOWED) == []


def test_a_module_the_deployment_does_not_allow_is_refused_with_its_position():
    text = llm("""
        tools:
          - {name: ok, function: "acme:run"}
          - {name: shell, function: "subprocess:getoutput"}
    """)
    assert errors(text, ALLOWED) == [
        "wf.yaml:10:37: task 'ask': tool function module 'subprocess' is not allowed by this deployment (allowed: "
        "acme; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)"]
    assert len(errors(text)) == 2  # none allowed by default
    # a registered plan is checked again when a run of it starts (the allowlist may have shrunk)
    plan = compile_workflow(src(text), "wf.yaml", DeploymentLimits.from_setting("acme,subprocess"))
    assert plan_problems(plan, ALLOWED) == [
        "workflow 'wf@1.0.0', line 4: task 'ask': tool function module 'subprocess' is not allowed by this "
        "deployment (allowed: acme; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)"]


@pytest.mark.parametrize("config, expected", [
    ("tools: [{name: 'two words', function: 'acme:f'}]",
     "wf.yaml:8:24: invalid tool name 'two words' (expected 1 to 64 letters, digits, _ or -)"),
    ("tools: [{name: a, function: 'acme.f'}]", "wf.yaml:8:37: invalid function 'acme.f' (expected 'module:callable')"),
    ("tools: [{name: a}]", "wf.yaml:8:17: a tool names either a registered 'function' ('module:callable') or a "
                           "'task' of this workflow, not neither"),
    ("tools: [{name: a, task: t, function: 'acme:f'}]", "wf.yaml:8:17: a tool names either"),
    ("tools: [{name: a, task: other}]", "wf.yaml:8:33: tool of task 'ask' names unknown task 'other'"),
    ("tools: [{task: ask}]", "wf.yaml:8:24: task 'ask' cannot be its own tool"),
    ("tools: [{name: a, function: 'acme:f', parameters: {type: array}}]",
     "wf.yaml:8:17: tool 'a': parameters must be a JSON Schema of an object"),
    ("tools: [{name: a, function: 'acme:f', parameters: {type: 7}}]",
     "wf.yaml:8:17: tool 'a': parameters is not a JSON Schema"),
    ("tools: [{name: a, function: 'acme:f', colour: red}]",
     "wf.yaml:8:47: unknown field 'colour' in config.tools[0] of task 'ask'"),
    ("tools: [{name: a, function: 'acme:f'}, {name: a, function: 'acme:g'}]", "two tools are named 'a'"),
    ("tools: '${inputs.tools}'", "wf.yaml:8:16: invalid tools '${inputs.tools}'"),
    ("max_tool_rounds: 3", "'config.max_tool_rounds' bounds a tool-calling loop: this task has no 'tools'"),
    ("tools: [{name: a, function: 'acme:f'}]\nmax_tool_rounds: 0", "wf.yaml:9:26: invalid max_tool_rounds 0"),
    ("tools: [{name: a, function: 'acme:f'}]\nmax_tool_rounds: 21", "wf.yaml:9:26: invalid max_tool_rounds 21"),
    ("tools: [{name: a, function: 'acme:f'}]\nmax_tool_rounds: true", "wf.yaml:9:26: invalid max_tool_rounds"),
])
def test_mistakes_in_tools_are_refused_with_their_positions(config, expected):
    found = errors(llm(config), ALLOWED)
    assert expected in found[0], found


TASK_TOOLS = HEADER + """
          tasks:
            - id: ask
              type: llm
              config:
                prompt: "p"
                tools: [{task: fetch}]
            - id: fetch
              {fetch}
"""


def task_tool(fetch: str, extra: str = "") -> list[str]:
    return errors(TASK_TOOLS.replace("{fetch}", fetch) + extra)


def test_a_task_tool_of_a_type_that_runs_is_valid_and_runs_only_as_a_tool():
    assert task_tool("type: http\n              config: {url: 'https://example.com/${args.q}'}") == []
    assert task_tool("type: python\n              config: {code: 'result = args'}") == []


@pytest.mark.parametrize("fetch, expected", [
    ("type: wait\n              config: {duration: 1s}",
     "wf.yaml:10:13: task 'fetch' is a tool of task 'ask', which calls it and waits for its result: a wait task "
     "cannot be one"),
    ("type: llm\n              config: {prompt: q}", "a llm task cannot be one"),
    ("type: http\n              when: '${inputs.go}'\n              config: {url: 'https://example.com'}",
     "wf.yaml:11:13: task 'fetch' runs only as a tool of task 'ask', when the model calls it: 'when' does not "
     "apply"),
    ("type: http\n              retry: {max_attempts: 2}\n              config: {url: 'https://example.com'}",
     "'retry' does not apply"),
])
def test_a_task_that_cannot_be_a_tool_is_refused_with_its_position(fetch, expected):
    found = task_tool(fetch)
    assert len(found) == 1 and expected in found[0], found


def test_a_tool_task_has_no_other_role_and_nothing_in_the_flow_waits_for_it():
    http = "type: http\n              config: {url: 'https://example.com'}"
    assert task_tool(http, """
            - {id: after, type: python, depends_on: [fetch], config: {code: "x = 1"}}
""") == ["wf.yaml:13:46: task 'after' depends on 'fetch', which only runs as a tool"]
    found = task_tool(http, """
          error_handling:
            catch: [{handler: fetch}]
""")
    assert found == ["wf.yaml:8:24: task 'fetch' already runs as a catch handler; a task has one role"]


def test_a_tool_task_inside_a_block_is_refused():
    found = errors(HEADER + """
          tasks:
            - id: ask
              type: llm
              config: {prompt: "p", tools: [{task: inner}]}
          control_flow:
            parallel:
              - id: both
                branches:
                  - {name: one, tasks: [{id: inner, type: http, config: {url: "https://example.com"}}]}
                  - {name: two, tasks: [{id: other, type: http, config: {url: "https://example.org"}}]}
        """)
    assert "task 'inner' is a tool of task 'ask': a tool task must be listed in workflow.tasks, not inside a " \
           "block" in "\n".join(found), found
