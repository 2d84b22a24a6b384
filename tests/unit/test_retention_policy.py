"""config.persistence.retention_policy (docs/history.md, "Retention"): compiled into the plan in seconds,
refused at its line:col when it is no duration or out of range, and a plan without one is the JSON (and
hash) it was before the field existed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from statemachine.compiler import compile_workflow
from statemachine.diagnostics import WorkflowError
from statemachine.history import Retention
from tests.doc_blocks import blocks

WORKFLOW = """\
workflow:
  metadata: {{id: kept}}
  config:
    persistence: {{enabled: true, retention_policy: {value}}}
  tasks:
    - {{id: a, type: wait, config: {{duration: 1s}}}}
"""


def test_the_retention_is_the_plans_in_seconds():
    assert compile_workflow(WORKFLOW.format(value="90d"), "w.yaml").retention == 90 * 86400
    assert compile_workflow(WORKFLOW.format(value="12h"), "w.yaml").retention == 12 * 3600


def test_a_plan_without_one_is_unchanged():
    plain = compile_workflow(WORKFLOW.format(value="1d").replace("retention_policy: 1d", "checkpoint_interval: 30s"),
                             "w.yaml")
    assert plain.retention is None and "retention" not in plain.canonical_json()


@pytest.mark.parametrize("value, message", [
    ("0s", "retention_policy must be a duration from 1s to 36500d (a hundred years), e.g. 90d; 0s is not"),
    ("36501d", "retention_policy must be a duration from 1s to 36500d (a hundred years), e.g. 90d; 36501d is not"),
    ("soon", "invalid duration 'soon'"),
    ('"${inputs.days}"', "invalid duration '${inputs.days}'"),
])
def test_a_bad_value_is_refused_at_its_place(value, message):
    with pytest.raises(WorkflowError) as raised:
        compile_workflow(WORKFLOW.format(value=value), "w.yaml")
    assert [str(d) for d in raised.value.diagnostics] == [f"w.yaml:4:52: {message}"]


def test_a_workflows_retention_replaces_the_deployments():
    ended = datetime(2026, 1, 1, tzinfo=timezone.utc)
    deployment = Retention(30)
    assert deployment.of_workflow(None) is deployment
    assert deployment.of_workflow(90 * 86400).expires(ended) == int(ended.timestamp()) + 90 * 86400
    assert Retention(0).of_workflow(3600).expires(ended) == int(ended.timestamp()) + 3600  # even over "for ever"
    assert Retention(0).of_workflow(None).expires(ended) is None


def test_the_pages_example_compiles_to_its_retention():
    (example,) = [text for kind, text in blocks("history.md") if kind == "yaml" and "retention_policy" in text]
    assert compile_workflow(example, "history.md").retention == 400 * 86400
