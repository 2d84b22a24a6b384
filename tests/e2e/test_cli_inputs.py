"""What `loopline` refuses or accepts at its edge (issue #9): sizes, options, deployment limits.
As a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
import os
import subprocess

from tests.e2e.test_cli import LOOPLINE, write


def loopline(*args, env: dict | None = None, timeout: float = 120, **options) -> subprocess.CompletedProcess:
    """The command with this machine's environment, minus the deployment setting unless ``env`` gives it."""
    base = {k: v for k, v in os.environ.items() if k != "LOOPLINE_CUSTOM_MODULES"}
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, **options)

DESCRIPTION = "d" * 420_000  # the plan is over DynamoDB's 400 KB item


def test_plans_over_a_dynamodb_item_run_with_a_sub_workflow(tmp_path):
    child = write(tmp_path, "child.yaml", f"""
        workflow:
          metadata: {{id: big_child, description: {DESCRIPTION}}}
          tasks:
            - {{id: hello, type: wait, config: {{duration: 0s}}}}
          outputs: {{mappings: {{done: "${{tasks.hello.status}}"}}}}
        """)
    parent = write(tmp_path, "parent.yaml", f"""
        workflow:
          metadata: {{id: big_parent, description: {DESCRIPTION}}}
          sub_workflows:
            - {{id: kid, workflow_ref: big_child}}
          outputs: {{mappings: {{child: "${{tasks.kid.output.done}}"}}}}
        """)
    done = loopline("run", parent, "--register", child, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"child": "COMPLETED"}


CUSTOM = """
    workflow:
      metadata: {id: custom_cli}
      tasks:
        - id: c
          type: custom
          config: {handler: "json:dumps", parameters: {obj: [1, 2]}}
    """


def test_validate_run_and_compile_refuse_a_custom_module_the_deployment_does_not_allow(tmp_path):
    path = write(tmp_path, "custom.yaml", CUSTOM)
    refused = (f"{path}:7:25: task 'c': custom handler module 'json' is not allowed by this deployment (allowed: "
               "none; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)")
    checked = loopline("validate", path)
    assert checked.returncode == 2 and checked.stdout.splitlines() == [refused]
    for command in (["run", path, "--json"], ["run", path, "--local"], ["compile", path], ["graph", path]):
        result = loopline(*command)
        assert result.returncode == 2 and result.stdout == "" and result.stderr.splitlines() == [refused], command


def test_the_deployment_setting_allows_a_module_on_every_target(tmp_path):
    path = write(tmp_path, "custom.yaml", CUSTOM)
    env = {"LOOPLINE_CUSTOM_MODULES": "json"}
    assert loopline("validate", path, env=env).returncode == 0
    for mode in ([], ["--local"]):
        done = loopline("run", path, "--json", *mode, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tasks"]["c"]["output"] == "[1, 2]"


def test_a_timeout_over_what_the_target_runs_is_refused_by_validate(tmp_path):
    path = write(tmp_path, "slow.yaml", """
        workflow:
          metadata: {id: slow}
          tasks:
            - {id: fetch, type: http, config: {url: "https://example.com", timeout: 30s}}
        """)
    result = loopline("validate", path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{path}:5:77: task 'fetch': config.timeout 30s is over the 25 s that http tasks may run (they run inside "
        "the worker, whose Lambda timeout is 30 s)"]
