"""loopline.Workflow, the Python builder: what it emits compiles as the hand-written YAML does, any valid
file reads back into a builder and out again to the same plan, and mistakes Python can see are raised at
the author's line before any YAML is written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from enum import Enum, IntEnum
from pathlib import Path

import pytest

from loopline import BuilderError, Compensation, Retry, Workflow
from statemachine.compiler import compile_workflow, validate_workflow
from statemachine.diagnostics import WorkflowError
from statemachine.limits import DeploymentLimits
from statemachine.yaml_source import load_yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).name
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# reference.md's custom-task example names a module the deployment must allow (its `# LOOPLINE_CUSTOM_MODULES:`).
LIMITS = DeploymentLimits.from_setting("mycompany")


def _files() -> list[tuple[str, str]]:
    """Every workflow file shipped: examples/ and every valid ```yaml block of the docs."""
    found = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
             for p in sorted((ROOT / "examples").rglob("*.yaml"))
             if "as_written" not in p.parts]  # the seed's own files, mistakes and all (test_seed_as_written.py)
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            # a graph document (docs/graph-form.md) is valid too, but it is not the YAML form the builder writes
            if m.group(1) == "yaml" and not validate_workflow(m.group(2), "doc", LIMITS) \
                    and "workflow" in (load_yaml(m.group(2), "doc")[0] or {}):
                found.append((f"docs/{page.name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(2)))
    return found


FILES = _files()


def _plan(text: str) -> dict:
    """The compiled plan, without the source positions (they point into whichever file was compiled)."""
    plan = json.loads(compile_workflow(text, "flow.yaml", LIMITS).canonical_json())
    for node in plan["nodes"].values():
        node.pop("line", None)
        node.pop("col", None)
    return plan


def test_there_are_files_to_round_trip():
    assert len(FILES) >= 60 and any("type: custom" in text for _, text in FILES)
    assert any(name.startswith("examples/seed/") for name, _ in FILES)


@pytest.mark.parametrize("name, text", FILES, ids=[name for name, _ in FILES])
def test_a_file_read_into_a_builder_gives_the_same_plan(name, text):
    wf = Workflow.from_yaml(text, name, LIMITS)
    emitted = wf.to_yaml()
    assert _plan(emitted) == _plan(text)
    assert load_yaml(emitted, "x")[0] == load_yaml(text, "x")[0]  # the same document, not just the same plan
    assert Workflow.from_yaml(emitted, name, LIMITS) == wf  # and out again: the same builder


def _full() -> Workflow:
    """Every part of the language the builder has a method for."""
    wf = Workflow("orders", version="2.1.0", name="Orders", description="every part", tags=["demo"])
    wf.configure(timeout="1h", max_retries=1, retry_policy=Retry(strategy="fixed", delay=timedelta(seconds=2)),
                 parallelism={"max_concurrent": 4}, human_in_the_loop={"default_timeout": "2d"})
    wf.input("items", "array", required=True, schema={"items": {"type": "integer"}})
    wf.input("approver", "string", default="boss@example.com", description="who approves")
    wf.variable("total", 0, type="number")
    wf.python("load", "result = {'items': inputs['items']}", retry=3, timeout=timedelta(minutes=5),
              outputs={"items": "${response['items']}"}, compensation="undo_load")
    wf.python("undo_load", "result = 'undone'")
    wf.http("notify_api", "https://api.example.com/hook", "POST", headers={"X-Id": "${run.id}"},
            body={"n": "${tasks.load.output.items.length}"}, after="load",
            when="${inputs.approver != ''}", trigger_rule="all_success",
            compensation=Compensation("undo_load", on_cancel=False))
    wf.wait("pause", timedelta(seconds=1), after="load")
    wf.callback("hook", deadline="1h", after="pause")
    wf.approval("ask", ["${inputs.approver}"], title="Ship ${tasks.load.output.items.length} items?",
                deadline=timedelta(days=3), reminder="1h", escalation={"action": "auto_reject"}, after="load")
    wf.condition("decide", "${tasks.ask.output.approved}",
                 then=lambda b: b.email("tell_yes", "${inputs.approver}", "Approved", "Shipping."),
                 else_=lambda b: b.sms("tell_no", "+15550100", "Not shipped."))
    wf.for_each("each", "${tasks.load.output.items}", lambda b: b.python(
        "square", "result = item * item", export={"last": "${response}"}), iterator="item",
        max_iterations=100, parallel=True, max_concurrent=2, after="decide")
    wf.while_loop("poll", "${loop.index < 2}", lambda b: b.wait("tick", "1s"), do_while=True, max_iterations=5)
    wf.parallel("fan", {"left": lambda b: b.shell("ls", ["ls", "-l"]), "right": ["hook"]}, strategy="all",
                after="each")
    wf.sub_workflow("child", "other@1.0.0", inputs={"x": 1}, timeout="10m", after="fan")
    wf.task("ask_llm", "llm", {"prompt": "Summarise ${tasks.load.output}"}, after="load",
            requires_approval={"approvers": ["a@example.com"]})
    wf.python("cleanup", "result = None")
    wf.python("on_error", "result = {'caught': error['type']}")
    wf.catch("on_error", ["HttpError"], retry=False)
    wf.finally_("cleanup")
    wf.output("squares", "${tasks.each.output}")
    wf.outputs_schema({"type": "object"})
    return wf


def test_every_method_emits_a_valid_workflow_that_reads_back_the_same():
    wf = _full()
    assert wf.validate(LIMITS) == [], wf.to_yaml()
    assert Workflow.from_yaml(wf.to_yaml()) == wf
    plan = wf.compile(LIMITS)
    assert plan.workflow_id == "orders" and plan.version == "2.1.0" and plan.timeout == 3600
    assert {"load", "decide", "tell_yes", "each", "square", "poll", "fan", "ls", "child"} <= set(plan.nodes)
    assert plan.finally_tasks == ("cleanup",) and plan.catch[0].handler == "on_error"


def test_what_it_emits_is_the_language_as_written_by_hand():
    doc = _full().to_dict()["workflow"]
    load, notify = doc["tasks"][0], doc["tasks"][2]
    assert load == {"id": "load", "type": "python", "retry": {"max_attempts": 3}, "timeout": 300,
                    "config": {"code": "result = {'items': inputs['items']}"},
                    "outputs": [{"name": "items", "value": "${response['items']}"}],
                    "compensation": {"task_id": "undo_load"}}
    assert notify["depends_on"] == ["load"] and notify["compensation"] == {"task_id": "undo_load", "on_cancel": False}
    assert doc["config"]["retry_policy"] == {"strategy": "fixed", "delay": 2}
    assert doc["inputs"] == {"schema": {"type": "object", "properties": {
        "items": {"items": {"type": "integer"}, "type": "array"},
        "approver": {"type": "string", "description": "who approves"}}, "required": ["items"]},
        "defaults": {"approver": "boss@example.com"}}
    decide = doc["control_flow"]["conditions"][0]
    assert decide["if"] == "${tasks.ask.output.approved}"
    assert decide["then"] == [{"id": "tell_yes", "type": "email", "config": {
        "to": ["${inputs.approver}"], "subject": "Approved", "body": "Shipping."}}]
    fan = doc["control_flow"]["parallel"][0]
    assert fan["branches"][1] == {"name": "right", "tasks": ["hook"]} and fan["aggregation"] == {"strategy": "all"}
    ask = doc["tasks"][5]["config"]
    assert ask["timeout"] == 259200 and ask["escalation_policy"] == {"action": "auto_reject"}
    assert doc["error_handling"] == {"catch": [{"error_types": ["HttpError"], "handler": "on_error"}],
                                     "finally": ["cleanup"]}


def test_a_block_inside_a_body_is_added_to_the_workflow_and_listed_by_id():
    wf = Workflow("nested")
    wf.python("start", "result = 1")
    wf.condition("outer", "${tasks.start.output == 1}",
                 then=lambda b: b.parallel("both", {"a": lambda p: p.python("pa", "result = 1"),
                                                    "b": lambda p: p.python("pb", "result = 2")}),
                 else_=lambda b: b.use("start_over"))
    wf.python("start_over", "result = 0")
    doc = wf.to_dict()["workflow"]
    assert doc["control_flow"]["conditions"][0]["then"] == ["both"]
    assert [block["id"] for block in doc["control_flow"]["parallel"]] == ["both"]
    assert wf.validate() == []


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "1e3", "0755", "0o17", "0x1F", "2026-01-01", "null",
                                  "~", "", "true", "True", ".inf", ".5", "12:30", "- a", "a: b", "#x", "'q'",
                                  "line one\nline two\n", "trailing space\n ", "tab\there", "${'$'}{x}"])
def test_strings_stay_strings_in_the_yaml_it_writes(text):
    wf = Workflow("strings").python("t", "result = 1", outputs={"v": text})
    data = load_yaml(wf.to_yaml(), "x")[0]
    assert data["workflow"]["tasks"][0]["outputs"][0]["value"] == text


def test_an_input_may_default_to_null_and_code_is_dedented():
    wf = Workflow("small").input("note", default=None).python("t", """
        x = 1
        result = x
    """)
    doc = wf.to_dict()["workflow"]
    assert doc["inputs"]["defaults"] == {"note": None}
    assert doc["tasks"][0]["config"]["code"] == "x = 1\nresult = x\n"
    assert wf.validate() == []


class Level(str, Enum):
    HIGH = "high"


class Count(IntEnum):
    TWO = 2


class FlagLike(int):
    pass


def test_python_values_become_the_language_s_values():
    when = datetime(2026, 12, 24, 9, 30, tzinfo=timezone.utc)
    wf = Workflow("values").wait("until_xmas", until=when).wait("half", timedelta(milliseconds=500))
    wf.python("enum", "result = 1", outputs={"level": Level.HIGH, "count": Count.TWO, "flag": FlagLike(1)})
    tasks = wf.to_dict()["workflow"]["tasks"]
    assert json.dumps(tasks[2]["outputs"]) == json.dumps(
        [{"name": "level", "value": "high"}, {"name": "count", "value": 2}, {"name": "flag", "value": 1}])
    assert tasks[0]["config"] == {"until": "2026-12-24T09:30:00+00:00"}
    assert tasks[1]["config"] == {"duration": 0.5}
    assert wf.validate() == []


# --- mistakes Python can see, at the author's line --------------------------------------------------

def _line_of(marker: str) -> str:
    """``file:line`` of the line of this file that ends with ``marker``."""
    source = Path(__file__).read_text(encoding="utf-8").splitlines()
    return f"{__file__}:{next(n for n, text in enumerate(source, 1) if text.endswith(marker))}"


def test_an_id_used_twice_is_refused_at_the_second_call():
    wf = Workflow("twice").python("a", "result = 1")  # first a
    with pytest.raises(BuilderError) as raised:
        wf.python("a", "result = 2")  # second a
    assert str(raised.value) == (f"{_line_of('# second a')}: task id 'a' is already used by the task added at "
                                 f"{_line_of('# first a')}")


def test_a_dependency_on_nothing_names_the_task_and_its_line():
    wf = Workflow("deps").python("load", "result = 1")
    wf.python("report", "result = 2", after=["lod"])  # depends on a typo
    with pytest.raises(BuilderError) as raised:
        wf.to_yaml()
    message = str(raised.value)
    assert message.endswith("task 'report' depends on 'lod', which is no task or block of workflow 'deps' "
                            "(did you mean 'load'?)")
    assert message.startswith(__file__) and _line_of("# depends on a typo") in message


@pytest.mark.parametrize("build, expected", [
    (lambda wf: wf.condition("c", "${true}", then=["ghost"]), "condition 'c' lists 'ghost'"),
    (lambda wf: wf.catch("ghost"), "the catch handler is 'ghost'"),
    (lambda wf: wf.finally_("ghost"), "the finally task is 'ghost'"),
    (lambda wf: wf.python("x", "result = 1", compensation="ghost"), "task 'x' is compensated by 'ghost'"),
    (lambda wf: wf.for_each("l", [1], ["ghost"]), "loop 'l' lists 'ghost'"),
])
def test_every_reference_to_nothing_is_refused(build, expected):
    wf = Workflow("refs")
    build(wf)
    with pytest.raises(BuilderError, match=re.escape(expected)):
        wf.to_dict()


def test_a_cycle_is_named_in_running_order_at_the_call_that_closed_it():
    wf = Workflow("loopy")
    wf.python("a", "result = 1", after="c")
    wf.python("b", "result = 1", after="a")
    wf.python("c", "result = 1", after="b")  # closes the cycle
    with pytest.raises(BuilderError) as raised:
        wf.save("never-written.yaml")
    assert not Path("never-written.yaml").exists()
    assert str(raised.value).endswith("task 'c' closes a dependency cycle: c -> a -> b -> c")
    assert _line_of("# closes the cycle") in str(raised.value)


def test_a_cycle_through_a_block_is_found():
    wf = Workflow("blocky")
    wf.python("a", "result = 1")
    wf.condition("c", "${true}", then=["a"], after="a")  # a waits for its block, which waits for a
    with pytest.raises(BuilderError, match="condition 'c' closes a dependency cycle: c -> a -> c"):
        wf.to_dict()


@pytest.mark.parametrize("call, expected", [
    (lambda wf: wf.python("x", "result = 1", aftr=["y"]), "unknown option 'aftr'"),  # type: ignore[call-arg]
    (lambda wf: wf.python("x", "r = 1", after="y", depends_on="y"), "'after' or 'depends_on', not both"),
    (lambda wf: wf.configure(timout="1h"), "unknown config 'timout'"),
    (lambda wf: wf.python("x", "result = 1", outputs={"v": float("nan")}), "nan is not a number"),
    (lambda wf: wf.python("x", "result = 1", outputs={"v": {1, 2}}), "a set cannot be written"),
    (lambda wf: wf.task("x", "http", {1: "a"}), "key 1 is not a string"),
    (lambda wf: wf.python("x", "result = 1", after=[3]), "3 is not a task id"),  # type: ignore[list-item]
])
def test_a_wrong_argument_is_refused_at_once(call, expected):
    with pytest.raises(BuilderError, match=re.escape(expected)) as raised:
        call(Workflow("args"))
    assert str(raised.value).startswith(__file__)


def test_what_only_the_compiler_sees_is_its_file_line_col_on_the_emitted_yaml():
    wf = Workflow("exprs").python("t", "result = 1", when="${lenn(inputs)}")
    text = wf.to_yaml()
    [diagnostic] = wf.validate()
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "lenn" in row)
    assert str(diagnostic).startswith(f"exprs.yaml:{line}:") and "unknown function 'lenn'" in str(diagnostic)
    with pytest.raises(WorkflowError):
        wf.compile()


def test_an_invalid_file_has_no_builder():
    with pytest.raises(WorkflowError) as raised:
        Workflow.from_yaml("workflow:\n  metadata: {id: x}\n  tasks:\n    - {id: a, type: pythn}\n", "bad.yaml")
    assert str(raised.value.diagnostics[0]).startswith("bad.yaml:4:")


def test_save_writes_the_yaml_and_nothing_else(tmp_path):
    wf = Workflow("saved").python("t", "result = 1")
    path = wf.save(tmp_path / "saved.yaml")
    assert path.read_text(encoding="utf-8") == wf.to_yaml() and list(tmp_path.iterdir()) == [path]
    assert validate_workflow(path.read_text(encoding="utf-8"), str(path)) == []


def test_import_loopline_does_not_import_the_builder():
    code = "import sys, loopline; print('loopline.builder' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["False", "False"]
    code = "import loopline; loopline.Workflow; loopline.nothing"
    failed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "has no attribute 'nothing'" in failed.stderr


def test_the_seed_s_expense_report_written_in_python_is_the_yaml_example():
    """examples/expense_report.py, the seed 000 workflow as its users write it, is examples/expense_report.yaml."""
    from loopline.python_workflow import yaml_of

    built = yaml_of(str(ROOT / "examples" / "expense_report.py"), 1_000_000)
    assert _plan(built) == _plan((ROOT / "examples" / "expense_report.yaml").read_text(encoding="utf-8"))


def test_an_author_s_type_checker_sees_the_api(tmp_path):
    """Options and their types are checked by mypy in the author's own file, before anything runs."""
    (tmp_path / "typed.py").write_text(
        "from loopline import Retry, Workflow\n"
        "wf = Workflow('t').python('a', 'result = 1', retry=Retry(max_attempts=2), after='b')\n"
        "wf.python('b', 'result = 1', aftr='a')\n"
        "wf.python('c', 'result = 1', retry='3')\n"
        "wf.for_each('l', [1, 2], lambda body: body.wait('w', '1s'), parallel='yes')\n", encoding="utf-8")
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache"), "typed.py"]
    checked = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "MYPYPATH": str(ROOT)})
    errors = [line.split(": error: ")[0] for line in checked.stdout.splitlines() if ": error: " in line]
    assert errors == ["typed.py:3", "typed.py:4", "typed.py:5"], checked.stdout
    assert 'Unexpected keyword argument "aftr"' in checked.stdout


def test_a_versions_migrations_are_written_and_compile():
    wf = (Workflow("invoice", version="2.0.0")
          .variable("total_cents", default=0)
          .python("draft", "result = 'drafted'")
          .migration("1.x", rename={"prepare": "draft"}, set={"total_cents": 100}))
    assert wf.to_dict()["workflow"]["migrations"] == [
        {"from": "1.x", "rename": {"prepare": "draft"}, "set": {"total_cents": 100}}]
    assert wf.compile().workflow_id == "invoice"
