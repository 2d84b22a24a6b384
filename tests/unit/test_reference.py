"""docs/reference.md stays honest: its examples compile, run as stated, and it covers the whole language.

The page's conventions (stated at its top):

* every ```yaml block is a complete workflow file with no diagnostics, unless its first
  line is ``# invalid: <fragment>``: then some diagnostic contains the fragment;
* a yaml block ending with ``# => {...}`` is run in local mode (``# inputs: {...}``,
  ``# callback: {...}``, ``# decide: WORD`` drive it) and must end as stated;
* every line of an ```expr block is ``${...}  # => <JSON>`` or ``${...}  # error: <fragment>``,
  evaluated in SCOPE (which the page shows in its expressions section);
* every property of the JSON Schema of the file, every task type and every expression
  function is named on the page as a code span.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from infra.clock import ManualClock
from loopline.memory.local_mode import LocalMode
from statemachine import dsl
from statemachine.compiler import compile_workflow, validate_workflow
from statemachine.expressions import EvalContext, ExpressionError, Scope, evaluate
from statemachine.expressions.functions import SIGNATURES
from statemachine.inputs import InputError
from statemachine.limits import DeploymentLimits
from statemachine.task_types import TASK_TYPES
from tests.unit.test_engine_semantics import drive

PAGE_PATH = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
PAGE = PAGE_PATH.read_text(encoding="utf-8")

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number in the page, text) of every fenced block in ``language``."""
    return [(PAGE.count("\n", 0, m.start()) + 1, m.group(2))
            for m in _FENCE.finditer(PAGE) if m.group(1) == language]


YAML_BLOCKS = _blocks("yaml")
EXPR_BLOCKS = _blocks("expr")


def _directive(text: str, name: str) -> str | None:
    """The value of a ``# name: value`` comment line (``# => value`` for ``=>``)."""
    prefix = "# => " if name == "=>" else f"# {name}: "
    values = [line[len(prefix):].strip() for line in text.splitlines() if line.startswith(prefix)]
    assert len(values) <= 1, f"'{prefix}' twice in one block"
    return values[0] if values else None


def _limits(text: str) -> DeploymentLimits:
    """What the deployment allows for this example: ``# LOOPLINE_CUSTOM_MODULES: prefixes``, else the default."""
    return DeploymentLimits.from_setting(_directive(text, "LOOPLINE_CUSTOM_MODULES"))


def _invalid(text: str) -> str | None:
    first = text.splitlines()[0]
    return first[len("# invalid: "):].strip() if first.startswith("# invalid: ") else None


# --- 1. every yaml block compiles (or fails as it says) ------------------------

def test_the_page_has_examples():
    assert len(YAML_BLOCKS) >= 40 and len(EXPR_BLOCKS) >= 5
    assert sum(1 for _, text in YAML_BLOCKS if _directive(text, "=>")) >= 25


@pytest.mark.parametrize("line, text", YAML_BLOCKS, ids=[f"line{n}" for n, _ in YAML_BLOCKS])
def test_yaml_example_compiles(line, text):
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert body and body[0] == "workflow:", f"reference.md:{line}: an example is a whole file, from 'workflow:'"
    messages = [str(d) for d in validate_workflow(text, "reference.md", _limits(text))]
    expected = _invalid(text)
    if expected is None:
        assert messages == [], f"reference.md:{line}: the example does not compile"
    else:
        assert any(expected in m for m in messages), (
            f"reference.md:{line}: expected a diagnostic containing {expected!r}, got {messages}")


# --- 4. examples marked with `# =>` run as the page states -----------------------

RUN_BLOCKS = [(line, text) for line, text in YAML_BLOCKS if _directive(text, "=>")]
ENDED = ("COMPLETED", "FAILED", "CANCELLED")


def same(got, want) -> bool:
    """Equal as JSON: typed, so 1 is not true and 2.0 is not 2."""
    return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)


def _token(entry: dict) -> str:
    return entry["url"].rsplit("/", 1)[1]


def _registered_examples(text: str) -> list:
    """The page's other examples that ``text`` names in a ``workflow_ref`` (a sub-workflow's child)."""
    wanted = set(re.findall(r"workflow_ref: (\w+)", text))
    plans = []
    for _, other in YAML_BLOCKS:
        found = re.search(r"metadata: \{id: (\w+)", other)
        if found and found.group(1) in wanted and other != text and not _invalid(other):
            plans.append(compile_workflow(other, "reference.md", _limits(other)))
    assert {plan.workflow_id for plan in plans} == wanted, f"no example defines {wanted}"
    return plans


def _run(text: str, inputs: dict, callback, decision) -> dict:
    clock = ManualClock()
    mode = LocalMode(clock=clock, inline_code=True)
    for plan in _registered_examples(text):
        mode.engine.register_workflow(plan)
    run_id = mode.engine.start_run(compile_workflow(text, "reference.md", _limits(text)), inputs)
    for _ in range(20):
        while mode.pump_once():  # what is due now; the clock moves only when nobody is to answer
            pass
        view = mode.engine.describe_run(run_id)
        if view["callbacks"] and callback is not None:
            mode.engine.submit_callback(_token(view["callbacks"][0]), callback)
            callback = None
            continue
        if view["approvals"] and decision is not None:
            mode.engine.decide(_token(view["approvals"][0]), decision)
            decision = None
            continue
        view = drive(mode, run_id, clock)
        if view["status"] in ENDED:
            return view
        if not (view["callbacks"] and callback is not None or view["approvals"] and decision is not None):
            raise AssertionError(f"the run is stuck: {view['status']}, {view['tasks']}")
    raise AssertionError("the run did not end")


@pytest.mark.parametrize("line, text", RUN_BLOCKS, ids=[f"line{n}" for n, _ in RUN_BLOCKS])
def test_example_runs_as_documented(line, text, monkeypatch):
    where = f"reference.md:{line}"
    # The run's deployment allows what the example's validation did (an llm tool's function runs then).
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", _directive(text, "LOOPLINE_CUSTOM_MODULES") or "")
    expected = json.loads(_directive(text, "=>"))
    inputs = json.loads(_directive(text, "inputs") or "{}")
    callback = _directive(text, "callback")
    decision = _directive(text, "decide")
    if "input_error" in expected:
        with pytest.raises(InputError) as refused:
            _run(text, inputs, None, None)
        assert expected["input_error"] in refused.value.message, where
        return
    view = _run(text, inputs, json.loads(callback) if callback else None, decision)
    assert view["status"] == expected["status"], f"{where}: {view['status']} {view['error']}"
    if "outputs" in expected:
        assert same(view["outputs"], expected["outputs"]), f"{where}: {view['outputs']}"
    if "error" in expected:
        assert (view["error"] or {}).get("type") == expected["error"], f"{where}: {view['error']}"
    for task_id, want in expected.get("tasks", {}).items():
        got = view["tasks"][task_id]
        if isinstance(want, str):
            assert got["status"] == want, f"{where}: task {task_id}: {got}"
        else:
            assert same({k: got[k] for k in want}, want), f"{where}: task {task_id}: {got}"


# --- 2. the page covers the JSON Schema, the task types and the functions ------

def _code_spans() -> set[str]:
    outside_blocks = _FENCE.sub("", PAGE)
    return set(re.findall(r"`([^`\n]+)`", outside_blocks))


def schema_property_names() -> set[str]:
    """Every property name of the workflow models, walking $ref, anyOf/oneOf/allOf, items, maps."""
    schema = dsl.WorkflowFile.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    names: set[str] = set()
    seen: set[str] = set()

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                walk(defs[name])
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            walk(node.get(key, []))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key])
        for name, sub in node.get("properties", {}).items():
            names.add(name)
            walk(sub)

    walk(schema)
    assert seen == set(defs), f"models not reached: {set(defs) - seen}"
    return names


def test_every_schema_property_is_documented():
    names = schema_property_names()
    assert {"workflow", "metadata", "trigger_rule", "break_on", "output_mapping", "workflow_ref"} <= names
    missing = sorted(n for n in names if n not in _code_spans())
    assert not missing, f"fields of the DSL not named as `code` on reference.md: {missing}"


def test_every_type_config_field_is_documented():
    spans = _code_spans()
    names = {n for spec in TASK_TYPES if spec.config for n in spec.config.model_fields}
    missing = sorted(n for n in names if n not in spans and f"config.{n}" not in spans)
    assert not missing, f"task type config fields not on reference.md: {missing}"


def test_every_task_type_has_a_section_and_an_example():
    headings = re.findall(r"^### (\w+)$", PAGE, re.MULTILINE)
    for task_type in TASK_TYPES.names:
        assert task_type in headings, f"no '### {task_type}' section"
    missing = [t for t in TASK_TYPES.names
               if not any(re.search(rf"type: {t}\b", text) for _, text in YAML_BLOCKS if not _invalid(text))]
    assert not missing, f"task types without a valid example: {missing}"


def test_every_function_is_documented_with_an_example():
    spans = _code_spans()
    examples = "\n".join(text for _, text in EXPR_BLOCKS)
    for name in SIGNATURES:
        assert any(span.startswith(f"{name}(") for span in spans), f"function {name}() not in the table"
        assert re.search(rf"\b{name}\(", examples), f"function {name}() has no ```expr example"


def test_sections_follow_the_file_order():
    order = list(dsl.Workflow.model_json_schema(by_alias=True)["properties"])
    headings = re.findall(r"^## (\S+)", PAGE, re.MULTILINE)
    first = {}
    for position, heading in enumerate(headings):
        key = heading.split(".")[0]
        first.setdefault(key, position)
    assert [key for key in order if key in first] == order, f"a section missing: {set(order) - set(first)}"
    assert sorted(order, key=first.__getitem__) == order, "sections are not in the file's order"


# --- 3. expression examples evaluate as stated -----------------------------------

SCOPE_DATA = {
    "inputs": {"name": "Ada", "count": 3, "price": 1234.5, "tags": ["urgent", "billing"],
               "user": {"email": "Ada@Example.com"}},
    "variables": {"total": 10, "count": 5},
    "tasks": {
        "fetch": {"status": "COMPLETED", "output": {"items": [1, 2, 3], "code": 200}, "error": None, "attempts": 1},
        "notify": {"status": "SKIPPED", "output": None, "error": None, "attempts": 0},
    },
    "loop": {"index": 1, "item": "billing"},
    "env": {"REGION": "eu-west-1"},
}
ITERATOR = "tag"
NOW = datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc)


def scope() -> Scope:
    """As a run builds it: roots, then bare names from the iterator, variables, inputs."""
    iterator = {ITERATOR: SCOPE_DATA["loop"]["item"]}
    return Scope(roots=SCOPE_DATA, bare=[iterator, SCOPE_DATA["variables"], SCOPE_DATA["inputs"]])


def test_the_page_shows_the_scope_of_its_expression_examples():
    shown = [json.loads(text) for _, text in _blocks("json")]
    assert SCOPE_DATA in shown
    assert "`2024-01-15T09:30:00Z`" in PAGE and f"iterator is named `{ITERATOR}`" in PAGE


EXPR_LINES = [(line + i + 1, text) for line, block in EXPR_BLOCKS
              for i, text in enumerate(block.splitlines()) if text.strip()]


@pytest.mark.parametrize("line, text", EXPR_LINES, ids=[f"line{n}" for n, _ in EXPR_LINES])
def test_expression_example(line, text):
    where = f"reference.md:{line}"
    if "  # error: " in text:
        source, fragment = text.rsplit("  # error: ", 1)
        with pytest.raises(ExpressionError) as failed:
            evaluate(source, scope(), EvalContext(now=NOW))
        assert fragment in str(failed.value), where
        return
    assert "  # => " in text, f"{where}: expected '${{...}}  # => result'"
    source, result = text.rsplit("  # => ", 1)
    got = evaluate(source, scope(), EvalContext(now=NOW))
    assert same(got, json.loads(result)), f"{where}: got {json.dumps(got)}"
