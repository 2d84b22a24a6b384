import textwrap
from pathlib import Path

import pytest

from statemachine.compiler import compile_workflow, load_and_compile
from statemachine.inputs import InputError, prepare_inputs

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture(scope="module")
def digest():
    return load_and_compile(WORKFLOWS / "email_digest.yaml")


def plan_with(inputs_yaml: str):
    text = "workflow:\n  metadata: {id: w}\n  inputs:\n" + textwrap.indent(textwrap.dedent(inputs_yaml), "    ")
    return compile_workflow(text, "w.yaml")


def test_valid_inputs_pass_through(digest):
    data = {"recipient": "a@example.com", "topics": ["ai"]}
    assert prepare_inputs(digest, data) == data


def test_format_email_is_checked(digest):
    with pytest.raises(InputError) as info:
        prepare_inputs(digest, {"recipient": "x", "topics": []})
    assert str(info.value) == "inputs.recipient: 'x' is not a 'email'"
    assert info.value.message == str(info.value)


def test_required_from_inputs_required(digest):
    with pytest.raises(InputError, match=r"^inputs: 'recipient' is a required property$"):
        prepare_inputs(digest, {"topics": []})
    with pytest.raises(InputError, match=r"^inputs: 'recipient' is a required property$"):
        prepare_inputs(digest, None)


def test_nested_paths_in_messages(digest):
    with pytest.raises(InputError) as info:
        prepare_inputs(digest, {"recipient": "a@b.c", "topics": ["ok", 3]})
    assert str(info.value) == "inputs.topics[1]: 3 is not of type 'string'"


@pytest.mark.parametrize("bad, kind", [([], "an array"), ("x", "a string"), (3, "a number"), (True, "a boolean")])
def test_non_object_input_is_refused(digest, bad, kind):
    with pytest.raises(InputError) as info:
        prepare_inputs(digest, bad)
    assert str(info.value) == f"inputs: expected an object, got {kind}"


def test_defaults_workflow_first_then_schema():
    plan = plan_with("""
        schema:
          type: object
          properties:
            a: {type: integer, default: 1}
            b: {type: integer, default: 2}
            c: {type: object, default: {k: []}}
            d: {type: integer}
        required: [a, b]
        defaults:
          a: 10
    """)
    assert prepare_inputs(plan, {}) == {"a": 10, "b": 2, "c": {"k": []}}
    assert prepare_inputs(plan, {"a": 5, "d": 4}) == {"a": 5, "b": 2, "c": {"k": []}, "d": 4}


def test_defaults_are_validated_too():
    plan = plan_with("""
        schema:
          type: object
          properties:
            n: {type: integer}
        defaults:
          n: many
    """)
    with pytest.raises(InputError, match=r"^inputs.n: 'many' is not of type 'integer'$"):
        prepare_inputs(plan, {})


def test_defaults_are_not_shared_between_runs():
    plan = plan_with("""
        schema:
          type: object
          properties:
            items: {type: array, default: []}
        defaults:
          tags: [a]
    """)
    first = prepare_inputs(plan, {})
    first["items"].append(1)
    first["tags"].append("b")
    assert prepare_inputs(plan, {}) == {"items": [], "tags": ["a"]}


def test_caller_data_is_not_mutated(digest):
    data = {"recipient": "a@example.com", "topics": ["ai"]}
    result = prepare_inputs(digest, data)
    result["topics"].append("x")
    assert data == {"recipient": "a@example.com", "topics": ["ai"]}


def test_no_schema_accepts_any_object():
    plan = compile_workflow("workflow:\n  metadata: {id: w}\n", "w.yaml")
    assert prepare_inputs(plan, {"anything": [1, 2]}) == {"anything": [1, 2]}
