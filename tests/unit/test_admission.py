"""What a deployment will run (statemachine/admission.py): custom modules, timeouts, finite numbers.

Each is refused at validation with its position, so that every workflow that validates runs
on every target (issue #9 items 2, 8 and 12).
"""

from __future__ import annotations

import pytest

from statemachine.admission import plan_problems
from statemachine.compiler import compile_workflow
from statemachine.limits import MAX_CODE_TIMEOUT, MAX_WORKER_TASK_TIMEOUT, DeploymentLimits
from tests.unit.test_compiler import HEADER, errors, src

ACME = DeploymentLimits.from_setting("acme, tools.safe")


def custom(handler: str) -> str:
    return HEADER + f"""
          tasks:
            - id: c
              type: custom
              config: {{handler: "{handler}"}}
    """


# --- custom modules (item 2) -----------------------------------------------------------------

def test_a_custom_module_is_refused_by_default_with_its_position():
    assert errors(custom("os:getcwd")) == [
        "wf.yaml:6:25: task 'c': custom handler module 'os' is not allowed by this deployment (allowed: none; set "
        "LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)"]


@pytest.mark.parametrize("handler", ["acme:run", "acme.billing.tasks:run", "tools.safe:run", "tools.safe.x:run"])
def test_modules_inside_an_allowed_prefix_are_valid(handler):
    assert errors(custom(handler), ACME) == []


@pytest.mark.parametrize("handler", ["acmex:run", "os:getcwd", "subprocess:getoutput", "tools:run",
                                     "tools.safer:run", "loopline.embedded.keyfile:local_link_key"])
def test_modules_outside_the_allowed_prefixes_are_refused(handler):
    module = handler.split(":")[0]
    assert errors(custom(handler), ACME) == [
        f"wf.yaml:6:25: task 'c': custom handler module '{module}' is not allowed by this deployment (allowed: "
        "acme, tools.safe; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)"]


def test_a_computed_handler_is_refused_even_when_modules_are_allowed():
    found = errors(custom("${inputs.handler}"), ACME)
    assert found == ["wf.yaml:6:25: task 'c': custom handler '${inputs.handler}' is computed at run time, so its "
                     "module cannot be checked against the modules this deployment allows: write 'module:function'"]


def test_custom_tasks_inside_blocks_are_checked_too():
    found = errors(HEADER + """
          control_flow:
            loops:
              - id: each
                items: [1, 2]
                tasks:
                  - {id: inner, type: custom, config: {handler: "os:system"}}
    """, ACME)
    assert len(found) == 1 and found[0].startswith("wf.yaml:8:57: task 'inner': custom handler module 'os'")


# --- timeouts (item 8) -----------------------------------------------------------------------

def timed(task_type: str, timeout: str, config: str = "") -> str:
    configs = {"python": 'code: "x = 1"', "shell": 'command: "true"', "custom": 'handler: "acme:run"',
               "http": 'url: "https://example.com"', "llm": "prompt: hi", "database": "connection: db, query: x",
               "email": "to: a@example.com", "sms": "to: '+15550100', body: hi", "voice": "to: x, message: hi",
               "browser": 'url: "https://example.com"', "file": "path: a.txt"}
    return HEADER + f"""
          tasks:
            - id: t
              type: {task_type}
              timeout: {timeout}
              config: {{{configs[task_type]}{config}}}
    """


@pytest.mark.parametrize("task_type", ["python", "shell", "custom"])
def test_code_tasks_may_run_up_to_14_minutes(task_type):
    assert MAX_CODE_TIMEOUT == 840
    assert errors(timed(task_type, "14m"), ACME) == []
    assert errors(timed(task_type, "841"), ACME) == [
        f"wf.yaml:6:16: task 't': timeout 841s is over the 840 s that {task_type} tasks may run (they run in the "
        "task-runner function, whose Lambda timeout is 15 min)"]


@pytest.mark.parametrize("task_type", ["http", "llm", "database", "email", "sms", "voice", "browser", "file"])
def test_tasks_in_the_worker_may_run_up_to_25_seconds(task_type):
    assert MAX_WORKER_TASK_TIMEOUT == 25
    assert errors(timed(task_type, "25s")) == []
    assert errors(timed(task_type, "1m")) == [
        f"wf.yaml:6:16: task 't': timeout 1m is over the 25 s that {task_type} tasks may run (they run inside the "
        "worker, whose Lambda timeout is 30 s)"]


def test_config_timeout_is_checked_like_the_task_timeout():
    found = errors(timed("http", "10s", ", timeout: 2m"))
    assert found == ["wf.yaml:7:53: task 't': config.timeout 2m is over the 25 s that http tasks may run (they "
                     "run inside the worker, whose Lambda timeout is 30 s)"]
    assert errors(timed("http", "10s", ", timeout: 20")) == []
    computed = errors(timed("shell", "10s", ', timeout: "${inputs.t}"'))
    assert computed == ["wf.yaml:7:42: task 't': config.timeout is computed at run time, so it cannot be checked "
                        "against the 840 s that shell tasks may run: write a duration"]
    bad = errors(timed("database", "10s", ", timeout: soon"))
    assert len(bad) == 1 and bad[0].startswith("wf.yaml:7:51: task 't': config.timeout: invalid duration 'soon'")


def test_durable_waits_and_the_workflow_timeout_have_no_limit():
    # Timers and links, not a function, wait for these; retries and loops repeat attempts, each
    # with its own timeout, so they change nothing.
    assert errors("""
        workflow:
          metadata: {id: durable}
          config: {timeout: 30d, retry_policy: {max_attempts: 50, delay: 1h}}
          tasks:
            - {id: w, type: wait, timeout: 10d, config: {duration: 7d}}
            - {id: cb, type: callback, timeout: 10d, config: {timeout: 30d}}
            - {id: cb2, type: callback, config: {timeout: "${inputs.wait}"}}
            - id: ap
              type: approval
              config:
                approvers: [a@example.com]
                timeout: 3d
                escalation_policy: {action: escalate, next_approvers: [b@example.com], timeout: 14d}
            - id: gated
              type: python
              timeout: 14m
              retry: {max_attempts: 10}
              config: {code: "x = 1"}
              requires_approval: {approvers: [a@example.com], timeout: 30d}
          control_flow:
            loops:
              - id: again
                type: while
                condition: "${loop.index < 100}"
                max_iterations: 100
                tasks:
                  - {id: body, type: http, timeout: 25s, config: {url: "https://example.com"}}
          sub_workflows:
            - {id: child, workflow_ref: other, timeout: 60d}
    """) == []


def test_a_registered_plan_is_checked_again_against_todays_limits():
    plan = compile_workflow(src(custom("acme:run")), "wf.yaml", ACME)
    assert plan_problems(plan, ACME) == []
    assert plan_problems(plan, DeploymentLimits()) == [
        "workflow 'wf@1.0.0', line 4: task 'c': custom handler module 'acme' is not allowed by this deployment "
        "(allowed: none; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)"]


# --- numbers JSON cannot hold (item 12) ----------------------------------------------------------

def test_nan_and_infinities_in_the_file_are_refused_where_written():
    found = errors(HEADER + """
          inputs:
            defaults: {n: .nan, m: [1, -.inf], k: 1e999, ok: 1.5e300}
          variables:
            - {name: v, default: .Inf}
          tasks:
            - {id: w, type: wait, config: {duration: 1s, note: !!float inf}}
    """)
    assert found == [
        "wf.yaml:4:19: number .nan is not finite: workflow values are JSON, which has no NaN or infinity",
        "wf.yaml:4:32: number -.inf is not finite: workflow values are JSON, which has no NaN or infinity",
        "wf.yaml:4:43: number 1e999 is not finite: workflow values are JSON, which has no NaN or infinity",
        "wf.yaml:6:26: number .Inf is not finite: workflow values are JSON, which has no NaN or infinity",
        "wf.yaml:8:56: number !!float inf is not finite: workflow values are JSON, which has no NaN or infinity",
    ]


def test_an_unknown_task_type_gets_only_its_own_error():
    found = errors(HEADER + """
          tasks:
            - {id: t, type: htp, timeout: 1h}
    """)
    assert len(found) == 1 and "unknown task type 'htp'" in found[0]
