"""A python task's requirements against the deployment's packages (statemachine/requirements.py)."""

from __future__ import annotations

from statemachine.compiler import validate_workflow
from statemachine.limits import DeploymentLimits
from statemachine.requirements import requirement_problems

PROVIDED = ("tinycalc==1.2.0", "Data_Tools==0.9", "weird==not-a-version")


def messages(requirements, provided=PROVIDED):
    return [message for _, message in requirement_problems(requirements, provided)]


def test_met_requirements_pass_by_canonical_name_and_specifier():
    assert messages(["tinycalc", "tinycalc>=1,<2", "data-tools==0.9.*", "TinyCalc~=1.2"]) == []
    assert messages(["other; python_version < '3'"]) == []  # not for this Python


def test_unmet_requirements_name_what_is_missing_or_provided():
    assert messages(["tinycalc>=2"]) == ["requirement 'tinycalc>=2': this deployment provides tinycalc 1.2.0"]
    assert messages(["numpy"]) == ["requirement 'numpy': this deployment's packages have no 'numpy'"]
    assert messages(["weird"]) == ["requirement 'weird': this deployment's packages have no 'weird'"]
    assert "no packages" in messages(["tinycalc"], provided=None)[0]
    assert "names a URL" in messages(["tinycalc @ https://example.com/t.whl"])[0]
    assert "cannot be read" in messages(["tiny calc >> 1"])[0]
    assert requirement_problems("tinycalc", PROVIDED) == [
        (None, "requirements must be a list of requirement strings such as 'requests>=2.31'")]


def test_validation_points_at_the_requirement():
    text = """
workflow:
  metadata: {id: reqs}
  tasks:
    - id: calc
      type: python
      config:
        requirements: [tinycalc, "numpy>=2"]
        code: "import tinycalc"
"""
    assert [str(d) for d in validate_workflow(text, "w.yaml", DeploymentLimits(python_packages=PROVIDED))] == [
        "w.yaml:8:34: task 'calc': requirement 'numpy>=2': this deployment's packages have no 'numpy'"]
    assert validate_workflow(text.replace(', "numpy>=2"', ""), "w.yaml", DeploymentLimits(python_packages=PROVIDED)) \
        == []
