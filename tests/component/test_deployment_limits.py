"""POST /runs and POST /workflows refuse what the deployment will not run (issue #9 items 2 and 8):
a custom module outside LOOPLINE_CUSTOM_MODULES (template.yaml's CustomModules), a timeout over
what the task's type can run. The api handler on the embedded default, as API Gateway calls it."""

from __future__ import annotations

import pytest

from loopline.embedded.runtime import EmbeddedAws
from tests.component.test_handlers import api
from tests.conftest import api_event
from tests.e2e.test_invariants import finish

CUSTOM = """
workflow:
  metadata: {id: limits, version: 1.0.0}
  tasks:
    - id: c
      type: custom
      config: {handler: "tests.component.test_deployment_limits:double", parameters: {n: 21}}
"""
PARENT = """
workflow:
  metadata: {id: limits_parent}
  sub_workflows:
    - {id: kid, workflow_ref: limits}
"""
REFUSED = ("task 'c': custom handler module 'tests.component.test_deployment_limits' is not allowed by this "
           "deployment (allowed: none; set LOOPLINE_CUSTOM_MODULES, the template's CustomModules parameter)")


def double(n: int) -> int:
    return 2 * n


def redeploy(runtime, monkeypatch, custom_modules: str) -> None:
    """The template's CustomModules changed: the functions start again with it (read once per cold start)."""
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", custom_modules)
    runtime.restart_functions()


def post(runtime, path: str, body: dict):
    event = api_event("api_post_runs.json", body=body)
    event["resource"] = event["path"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = "/Prod" + path
    return api(runtime, event)


@pytest.mark.parametrize("path", ["/runs", "/workflows"])
def test_a_module_the_deployment_does_not_allow_is_refused(runtime, monkeypatch, path):
    redeploy(runtime, monkeypatch, "")
    status, body = post(runtime, path, {"workflow": CUSTOM})
    assert status == 400
    assert body == {"error": "invalid workflow", "diagnostics": [f"workflow.yaml:7:25: {REFUSED}"]}
    redeploy(runtime, monkeypatch, "tests.components")  # a prefix is a whole module name
    assert post(runtime, path, {"workflow": CUSTOM})[0] == 400


def test_a_module_the_deployment_allows_runs_and_is_checked_again_when_started(runtime, monkeypatch):
    redeploy(runtime, monkeypatch, "tests.component")
    assert post(runtime, "/workflows", {"workflow": CUSTOM})[0] == 201
    status, body = post(runtime, "/runs", {"workflow": "limits", "input": {}})
    assert status == 201, body
    done = finish(runtime, body["run_id"])
    assert done["status"] == "COMPLETED" and done["tasks"]["c"]["output"] == 42

    # The deployment narrows its allowlist: what was registered before is refused when started,
    # by id or as another workflow's sub-workflow, and nothing is started.
    redeploy(runtime, monkeypatch, "acme")
    for workflow in ("limits", PARENT):
        status, body = post(runtime, "/runs", {"workflow": workflow, "input": {}})
        assert status == 400, body
        assert body["error"] == "invalid workflow"
        assert body["diagnostics"] == [f"workflow 'limits@1.0.0', line 5: {REFUSED.replace('none', 'acme')}"]
    assert len(_runs(runtime)) == 1  # the first run only


def _runs(runtime) -> list[dict]:
    items = runtime.aws.client("dynamodb").scan(TableName=runtime.stack.physical["RunsTable"])["Items"]
    return [item for item in items if item["sk"]["S"] == "RUN"]


def test_a_timeout_over_what_the_task_type_can_run_is_refused(runtime):
    workflow = """
workflow:
  metadata: {id: slow}
  tasks:
    - {id: fetch, type: http, timeout: 1m, config: {url: "https://example.com"}}
    - {id: crunch, type: python, timeout: 1h, config: {code: "x = 1"}}
"""
    for path in ("/runs", "/workflows"):
        status, body = post(runtime, path, {"workflow": workflow})
        assert status == 400
        assert body["diagnostics"] == [
            "workflow.yaml:5:40: task 'fetch': timeout 1m is over the 25 s that http tasks may run (they run inside "
            "the worker, whose Lambda timeout is 30 s)",
            "workflow.yaml:6:43: task 'crunch': timeout 1h is over the 840 s that python tasks may run (they run in "
            "the task-runner function, whose Lambda timeout is 15 min)"]


# The task runner is told the allowlist in each request; the history and console sign-in functions compile no workflow.
NO_WORKFLOWS = ("TaskRunnerFunction", "HistoryFunction", "GaugesFunction", "ConsoleAuthorizerFunction",
                "ConsoleSignInFunction")


def test_the_template_parameter_reaches_every_function(monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "from.this.machine")
    aws = EmbeddedAws(parameters={"CustomModules": "acme, mycompany.tasks"})
    try:
        engine = {name: spec for name, spec in aws.stack.functions.items() if name not in NO_WORKFLOWS}
        assert engine, "the stack has engine functions"
        for spec in engine.values():
            assert spec.environment["LOOPLINE_CUSTOM_MODULES"] == "acme, mycompany.tasks"
        # The task runner is told the allowlist in each request; its environment holds no engine setting.
        assert all("LOOPLINE_CUSTOM_MODULES" not in aws.stack.functions[name].environment for name in NO_WORKFLOWS)
    finally:
        aws.stop()
    aws = EmbeddedAws()  # on one machine, the machine's setting is the stack's parameter
    try:
        assert {spec.environment["LOOPLINE_CUSTOM_MODULES"] for name, spec in aws.stack.functions.items()
                if name not in NO_WORKFLOWS} == {"from.this.machine"}
    finally:
        aws.stop()
