"""A workflow's `migrations` section (statemachine/migration_decl.py): its checks at compile time, which entry
applies to a run's version, its renames, and the variables it gives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from statemachine.compat import compare
from statemachine.diagnostics import WorkflowError
from statemachine.expressions import EvalContext, ExpressionError
from statemachine.migration_decl import StateError, declared_for, migrated_variables, with_renames
from statemachine.scope import build_scope
from tests.conftest import compile_yaml

V1 = """
workflow:
  metadata: {id: order, version: "1.2.0"}
  variables: [{name: count, default: 2}]
  tasks:
    - {id: prepare, type: python, config: {code: "result = 'draft 1'"}}
"""

V2 = """
workflow:
  metadata: {id: order, version: "2.0.0"}
  variables: [{name: count, default: 0}, {name: total, default: 0}, {name: note, default: ""}]
  tasks:
    - {id: draft, type: python, config: {code: "result = 'draft 1'"}}
  migrations:
%s
"""

ENTRY = """    - from: "1.x"
      rename: {prepare: draft}
      state: "${ {'total': variables.count * 10} }"
      set: {note: "from ${tasks.prepare.output}"}"""

CTX = EvalContext(datetime(2030, 1, 1, tzinfo=timezone.utc))


def test_a_workflow_without_migrations_has_the_plan_json_it_had():
    assert '"migrations"' not in compile_yaml(V1).to_json()
    plan = compile_yaml(V2 % ENTRY)
    assert plan.migrations[0].from_version == "1.x" and plan.migrations[0].rename == {"prepare": "draft"}


@pytest.mark.parametrize("entry, message", [
    ('    - {from: "one"}',
     "test.yaml:8:14: 'from' is a version (1.0.0) or every version of a major (1.x), not 'one'"),
    ('    - {from: "1.x", rename: {prepare: nowhere}}',
     "test.yaml:8:39: renames 'prepare' to 'nowhere', which this version does not have"),
    ('    - {from: "1.x", rename: {draft: draft}}',
     "test.yaml:8:37: renames 'draft', which this version still has; a renamed task's old id is gone"),
    ('    - {from: "1.x", state: "${ 1 + }"}', "test.yaml:8:36: expression error"),
    ('    - {from: "1.x", set: {note: "${ ( }"}}', "test.yaml:8:39: expression error"),
    ('    - {from: "1.x", colour: red}', "unknown field 'colour'"),
])
def test_each_problem_is_reported_where_it_is_written(entry, message):
    with pytest.raises(WorkflowError) as caught:
        compile_yaml(V2 % entry)
    assert message in str(caught.value), str(caught.value)


def test_the_first_entry_for_the_runs_version_applies():
    plan = compile_yaml(V2 % '    - {from: "1.0.0", set: {note: a}}\n    - {from: "1.x", set: {note: b}}')
    assert declared_for(plan, "1.0.0").set == {"note": "a"}
    assert declared_for(plan, "1.4.2").set == {"note": "b"}
    assert declared_for(plan, "0.9.0") is None
    assert declared_for(compile_yaml(V1), "1.0.0") is None


def test_declared_renames_join_the_task_map():
    old, new = compile_yaml(V1), compile_yaml(V2 % ENTRY)
    report_map = dict(compare(old, new).task_map)
    assert report_map == {}  # without renamed_from, the report sees prepare removed and draft added
    assert with_renames(report_map, declared_for(new, old.version), old, new) == {"prepare": "draft"}


def test_variables_are_the_new_defaults_the_runs_own_then_state_then_set():
    old, new = compile_yaml(V1), compile_yaml(V2 % ENTRY)
    scope = build_scope({}, {"count": 3}, {"prepare": {"output": "draft 1", "status": "COMPLETED"}}, {})
    assert migrated_variables(declared_for(new, old.version), new, {"count": 3}, scope, CTX) == {
        "count": 3, "total": 30, "note": "from draft 1"}
    assert migrated_variables(None, new, {"count": 3}, scope, CTX) == {"count": 3, "total": 0, "note": ""}


def test_a_state_that_is_not_an_object_or_fails_is_an_error():
    new = compile_yaml(V2 % '    - {from: "1.x", state: "${ variables.count }"}')
    scope = build_scope({}, {"count": 3}, {}, {})
    with pytest.raises(StateError, match="its state gave int, not an object of variables"):
        migrated_variables(declared_for(new, "1.0.0"), new, {"count": 3}, scope, CTX)
    new = compile_yaml(V2 % '    - {from: "1.x", state: "${ variables.count / 0 }"}')
    with pytest.raises(ExpressionError):
        migrated_variables(declared_for(new, "1.0.0"), new, {"count": 3}, scope, CTX)
