"""The two seed mistakes validation finds (statemachine/seed_mistakes.py)."""

from __future__ import annotations

from statemachine.compiler import validate_workflow
from statemachine.seed_mistakes import query_placeholders, unbound_parameters


def test_placeholders_skip_strings_identifiers_comments_and_casts():
    query = """SELECT ':no', "col:x", a::text, :yes -- :comment
               FROM t /* :block */ WHERE b = :also AND c = :yes"""
    assert [name for name, _ in query_placeholders(query)] == ["yes", "also", "yes"]
    assert query[query.index(":yes"):].startswith(":yes")


def test_unbound_names_each_missing_parameter_once():
    config = {"query": "INSERT INTO t VALUES (:a, :b, :b)", "parameters": {"a": 1}}
    assert [message for _, message in unbound_parameters(config)] == [
        "the query binds :b, which config.parameters does not give (it gives: a)"]
    assert unbound_parameters({"query": "SELECT :a", "parameters": "${inputs.p}"}) == []  # computed: at run time
    assert unbound_parameters({"query": "SELECT ${inputs.q}", "parameters": {}}) == []
    assert unbound_parameters({"query": "SELECT ?", "parameters": [1]}) == []


def test_validation_points_at_the_placeholder_and_at_the_approval_field():
    text = """workflow:
  metadata: {id: m}
  tasks:
    - id: save
      type: database
      config: {connection: main, query: "UPDATE t SET a = :a WHERE id = :id", parameters: {a: 1}}
    - id: gate
      type: python
      requires_approval: {enabled: true, approvers: [x@example.com]}
      config: {code: "result = 1"}
      outputs: [{name: said, value: "${approval.response}"}, {name: who, value: "${approval.approver}"}]
"""
    assert [str(d) for d in validate_workflow(text, "w.yaml")] == [
        "w.yaml:6:73: the query binds :id, which config.parameters does not give (it gives: a)",
        "w.yaml:11:49: an approval's result has no field 'response' (it has approved, decision, approver, "
        "comments, data, decided_at, votes)",
    ]
