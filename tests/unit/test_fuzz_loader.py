"""Hostile input for the loader and compiler (issue #5 item 7): only diagnostics, never a crash."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine.compiler import validate_workflow
from statemachine.diagnostics import Diagnostic

KEYS = ["workflow", "metadata", "id", "tasks", "type", "config", "code", "depends_on", "when", "control_flow",
        "loops", "parallel", "conditions", "branches", "items", "if", "then", "else", "outputs", "inputs",
        "schema", "retry", "timeout", "error_handling", "catch", "finally", "sub_workflows", "workflow_ref"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.sampled_from(["python", "wait", "a", "b", "${tasks.a.output}", "${", "1h", "P3D", "x" * 50,
                                     "${ (((( }", "${inputs.x + }", "'", "\\u0000", "--", ":", "- a"]),
                    st.text(max_size=20))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5)), max_leaves=40)


def check(text: str) -> None:
    found = validate_workflow(text, "fuzz.yaml")
    assert all(isinstance(d, Diagnostic) and d.file == "fuzz.yaml" and d.line >= 1 and d.col >= 1 for d in found)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_structured_documents_give_diagnostics_not_crashes(doc):
    check(yaml.safe_dump({"workflow": doc}, allow_unicode=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("workflow:-{}[]'\"\n\t #&*!|>%@`$,.0123456789abcxyz")), max_size=300))
def test_arbitrary_text_gives_diagnostics_not_crashes(text):
    check(text)


def test_pathological_documents_are_bounded():
    check("a: &a [" + "*a, " * 50 + "]\n" * 1)  # alias bombs
    check("workflow:\n" + "  " * 1 + "[" * 5000 + "]" * 5000 + "\n")  # deep nesting
    check("workflow:\n  metadata: {id: x}\n  tasks:\n" + "".join(
        f"    - {{id: t{i}, type: wait, config: {{duration: 1s}}, depends_on: [t{i - 1}]}}\n" if i else
        "    - {id: t0, type: wait, config: {duration: 1s}}\n" for i in range(2000)))
