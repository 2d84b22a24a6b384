import json
import textwrap
from pathlib import Path

import pytest

from statemachine.compiler import compile_workflow, load_and_compile, validate_workflow
from statemachine.diagnostics import Diagnostic, WorkflowError
from statemachine.limits import DeploymentLimits
from statemachine.plan import Plan
from statemachine.task_types import TASK_TYPES

WORKFLOWS = Path(__file__).parent / "workflows"
TYPES = ", ".join(TASK_TYPES.names)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def errors(text: str, limits: DeploymentLimits = DeploymentLimits()) -> list[str]:
    return [str(d) for d in validate_workflow(src(text), "wf.yaml", limits)]


def compiled(text: str) -> Plan:
    return compile_workflow(src(text), "wf.yaml")


# Indented like the bodies appended to it, so one dedent fits both; the body's
# leading newline ends the header's last line.
HEADER = """
        workflow:
          metadata: {id: wf}"""


# --- the seed examples -------------------------------------------------------------------

def test_email_digest_compiles():
    plan = load_and_compile(WORKFLOWS / "email_digest.yaml")
    assert plan.workflow_id == "email_digest_workflow"
    assert plan.name == "Daily Email Digest"
    assert plan.version == "1.0.0"
    assert list(plan.nodes) == ["fetch_news", "summarize", "send_email"]
    assert plan.roots == ("fetch_news",) and plan.sinks == ("send_email",)
    assert plan.nodes["summarize"].deps == ("fetch_news",)
    assert plan.nodes["summarize"].dependents == ("send_email",)
    assert plan.nodes["send_email"].deps == ("summarize",)
    assert plan.input_schema["required"] == ["recipient", "topics"]
    assert plan.output_mappings == {
        "status": "completed", "articles_count": "${tasks.fetch_news.output.articles.length}",
    }
    fetch = plan.nodes["fetch_news"]
    assert (fetch.type, fetch.line, fetch.col) == ("http", 23, 7)
    assert fetch.outputs[0].model_dump() == {"name": "articles", "value": "${response.data.articles}", "export": True}
    assert fetch.config["headers"] == {"Authorization": "Bearer ${env.NEWS_API_KEY}"}
    assert fetch.retry.max_attempts == 1
    assert plan.hash and len(plan.hash) == 64


def test_data_pipeline_compiles():
    path = WORKFLOWS / "data_pipeline.yaml"
    assert [str(d) for d in validate_workflow(path.read_text(), "p.yaml")] == []


def test_content_review_compiles():
    path = WORKFLOWS / "content_review.yaml"
    assert [str(d) for d in validate_workflow(path.read_text(), "c.yaml")] == []


def test_branching_plan():
    plan = load_and_compile(WORKFLOWS / "branching.yaml")
    assert list(plan.nodes) == ["score", "big", "manual", "auto", "report"]
    big = plan.nodes["big"]
    assert (big.kind, big.condition, big.then, big.else_) == (
        "condition", "${tasks.score.output.value > 100}", ("manual",), ("auto",))
    assert big.deps == ("score",) and big.dependents == ("auto", "manual")
    assert plan.nodes["manual"].branch_of == ("big", "then")
    assert plan.nodes["auto"].branch_of == ("big", "else")
    assert plan.nodes["manual"].deps == ("big",)
    assert plan.nodes["report"].deps == ("auto", "manual")
    assert plan.nodes["report"].trigger_rule == "none_failed"
    assert plan.roots == ("score",) and plan.sinks == ("report",)
    assert (plan.timeout, plan.max_concurrent) == (7200.0, 4)
    assert plan.input_defaults == {"amount": 10}
    assert plan.input_schema["required"] == ["amount"]
    assert [v.model_dump() for v in plan.variables] == [
        {"name": "total", "type": "number", "default": 0, "description": None}]
    # Python code is not an expression: `${...}` in it is neither parsed nor a reference.
    assert "${not_an_expression}" in plan.nodes["score"].config["code"]
    # Retry: max_retries 2 -> 3 attempts, workflow backoff; the task overrides field by field.
    assert plan.nodes["score"].retry.model_dump() == {
        "max_attempts": 3, "strategy": "exponential", "delay": 0.5, "max_delay": 60.0,
        "backoff_multiplier": 2.0, "jitter": "none", "retryable_errors": None, "delays": None}
    report = plan.nodes["report"]
    assert (report.retry.max_attempts, report.retry.delay, report.retry.strategy) == (5, 2.0, "exponential")
    assert report.timeout == 30.0
    # An approval task's config is normalised to ApprovalSpec fields (seconds, defaults applied).
    assert plan.nodes["manual"].config == {
        "approvers": ["ops@example.com"], "required_approvals": 1, "required_rejections": 1, "timeout": 259200.0,
        "reminder": None, "channels": ["email"],
        "escalation_policy": {"action": "auto_reject", "next_approvers": [], "timeout": 3600.0},
        "title": "Approve ${inputs.amount}", "description": None, "details": None}
    approval = plan.nodes["auto"].requires_approval
    assert (approval.approvers, approval.timeout) == (("boss",), 259200.0)
    assert plan.nodes["score"].requires_approval is None


# --- plan serialisation and hashing ---------------------------------------------------------

def test_plan_json_round_trip():
    for name in ("email_digest.yaml", "branching.yaml"):
        plan = load_and_compile(WORKFLOWS / name)
        again = Plan.from_json(plan.to_json())
        assert again == plan
        assert again.with_hash().hash == plan.hash
        json.loads(plan.to_json())  # plain JSON


def test_hash_is_stable_and_tracks_changes():
    text = (WORKFLOWS / "email_digest.yaml").read_text()
    first = compile_workflow(text, "a.yaml")
    assert compile_workflow(text, "b.yaml").hash == first.hash
    assert compile_workflow(text + "# trailing comment\n", "a.yaml").hash == first.hash
    changed = text.replace('subject: "Your Daily Digest"', 'subject: "Your Digest"')
    assert changed != text
    assert compile_workflow(changed, "a.yaml").hash != first.hash


# --- many errors at once ------------------------------------------------------------------

def test_every_error_is_reported_in_order():
    assert errors("""
        workflow:
          metadata:
            id: multi
          tasks:
            - id: a
              type: htp
            - id: b
              type: python
              dependson: [a]
              config:
                code: "x = 1"
            - id: c
              type: shell
              depends_on: [nope]
              timeout: 3 days
            - id: a
              type: shell
              when: "${tasks.ghost.output > }"
    """) == [
        f"wf.yaml:6:13: unknown task type 'htp' (did you mean 'http'? expected one of: {TYPES})",
        "wf.yaml:9:7: unknown field 'dependson' in task 'b' (did you mean 'depends_on'?)",
        "wf.yaml:14:20: task 'c' depends on unknown task 'nope'",
        "wf.yaml:15:16: invalid duration '3 days'",
        "wf.yaml:16:11: duplicate id 'a' (first defined at 5:11)",
        "wf.yaml:18:16: task 'a' depends on unknown task 'ghost'",
        "wf.yaml:18:37: expression error: unexpected end of expression",
    ]


def test_compile_raises_with_all_diagnostics():
    with pytest.raises(WorkflowError) as info:
        compiled(HEADER + """
          tasks:
            - {id: a, type: shell, depends_on: [x]}
            - {id: b, type: shel}
        """)
    assert [d.line for d in info.value.diagnostics] == [4, 5]
    assert str(info.value) == "\n".join(str(d) for d in info.value.diagnostics)
    assert isinstance(info.value.diagnostics[0], Diagnostic)


def test_diagnostic_format():
    assert str(Diagnostic("a/b.yaml", 3, 9, "boom")) == "a/b.yaml:3:9: boom"


# --- file and top-level shape ---------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "wf.yaml:1:1: the file is empty: expected a mapping with a 'workflow' key"),
        ("- a\n", "wf.yaml:1:1: top level must be a mapping with a 'workflow' key"),
        ("flow: {}\n", "wf.yaml:1:1: top level must be a mapping with a 'workflow' key"),
        ("workflow: 3\n", "wf.yaml:1:11: invalid workflow 3: input should be a valid mapping"),
        ("workflow:\n  metadata: {id: x}\n  tasks: [\n",
         "wf.yaml:4:1: invalid YAML: expected the node content, but found '<stream end>' (while parsing a flow node)"),
        ("workflow: {metadata: {id: x}}\nworkflow: {metadata: {id: y}}\n",
         "wf.yaml:2:1: duplicate key 'workflow' (first defined at 1:1)"),
    ],
)
def test_file_shape(text, expected):
    assert [str(d) for d in validate_workflow(text, "wf.yaml")] == [expected]


def test_unknown_and_missing_fields():
    assert errors("""
        workflow:
          metadata:
            name: no id
            version: "1.0"
          confg: {}
          tasks:
            - id: a
              type: shell
              retry: {max_attempts: 0, delayy: 1s}
            - type: shell
          extra: 1
    """) == [
        "wf.yaml:3:5: field 'id' is required",
        "wf.yaml:4:14: invalid version '1.0' (expected semantic versioning, e.g. 1.0.0)",
        "wf.yaml:5:3: unknown field 'confg' in workflow (did you mean 'config'?)",
        "wf.yaml:9:29: invalid max_attempts 0: input should be greater than or equal to 1",
        "wf.yaml:9:32: unknown field 'delayy' in retry of task 'a' (did you mean 'delay'?)",
        "wf.yaml:10:7: field 'id' is required",
        "wf.yaml:11:3: unknown field 'extra' in workflow",
    ]


def test_bad_ids_and_enum_values():
    lines = errors(HEADER + """
          tasks:
            - id: t
              type: shell
              trigger_rule: sometimes
              depends_on: [ok, "not-ok"]
    """)
    assert lines == [
        "wf.yaml:6:21: invalid trigger_rule 'sometimes': input should be 'none_failed_min_one_success', "
        "'all_success', 'all_done', 'one_success', 'one_failed' or 'none_failed'",
        "wf.yaml:7:20: task 't' depends on unknown task 'ok'",
        "wf.yaml:7:24: invalid id 'not-ok' (letters, digits and _, not starting with a digit)",
        "wf.yaml:7:24: task 't' depends on unknown task 'not-ok'",
    ]


def test_an_id_longer_than_a_key_can_hold_is_refused_where_it_is_written():
    long_task, long_flow = "t" * 129, "w" * 3000
    assert errors(f"""
        workflow:
          metadata: {{id: {long_flow}}}
          tasks:
            - {{id: {long_task}, type: python, config: {{code: "result = 1"}}}}
            - {{id: {"k" * 128}, type: python, depends_on: [{long_task}], config: {{code: "result = 2"}}}}
    """) == [
        "wf.yaml:2:18: id 'wwwwwwwwwwwwwwwwwwww...' is longer than 128 characters",
        "wf.yaml:4:12: id 'tttttttttttttttttttt...' is longer than 128 characters",
        "wf.yaml:5:169: id 'tttttttttttttttttttt...' is longer than 128 characters",
    ]


def test_empty_sections_mean_empty():
    plan = compiled("""
        workflow:
          metadata: {id: empty}
          tasks:
          variables:
          control_flow:
            conditions:
    """)
    assert plan.nodes == {} and plan.roots == () and plan.version == "1.0.0"
    assert plan.input_schema == {"type": "object"}


# --- references, ids, cycles ------------------------------------------------------------------

def test_cycles_are_printed_once_each():
    assert errors(HEADER + """
          tasks:
            - id: a
              type: shell
              depends_on: [c]
            - id: b
              type: shell
              config:
                command: "echo ${tasks.a.output}"
            - id: c
              type: shell
              depends_on: [b]
            - id: d
              type: shell
              depends_on: [d]
            - id: e
              type: shell
              depends_on: [a]
    """) == [
        "wf.yaml:4:11: dependency cycle: a -> b -> c -> a",
        "wf.yaml:14:11: dependency cycle: d -> d",
    ]


def test_cycle_through_a_condition():
    assert errors(HEADER + """
          tasks:
            - {id: a, type: shell, config: {command: "${tasks.later.output}"}}
          control_flow:
            conditions:
              - id: check
                if: ${tasks.a.output.ok}
                then:
                  - {id: later, type: shell}
    """) == ["wf.yaml:4:12: dependency cycle: a -> check -> later -> a"]


def test_duplicate_ids_across_tasks_and_blocks():
    assert errors(HEADER + """
          tasks:
            - {id: x, type: shell}
          control_flow:
            conditions:
              - id: x
                if: true
                then:
                  - {id: y, type: shell}
                else:
                  - {id: y, type: shell}
    """) == [
        "wf.yaml:7:13: duplicate id 'x' (first defined at 4:12)",
        "wf.yaml:12:18: duplicate id 'y' (first defined at 10:18)",
    ]


def test_references_in_expressions_are_dependencies():
    plan = compiled(HEADER + """
          tasks:
            - {id: a, type: shell}
            - {id: b, type: shell}
            - id: c
              type: shell
              when: ${tasks.a.status == 'COMPLETED'}
              config:
                command: echo ${tasks['b'].output}
              outputs:
                - {name: me, value: "${tasks.c.output}"}
    """)
    assert plan.nodes["c"].deps == ("a", "b")
    assert plan.roots == ("a", "b") and plan.sinks == ("c",)


def test_topological_order_keeps_file_order_among_ready_nodes():
    plan = compiled(HEADER + """
          tasks:
            - {id: z, type: shell, depends_on: [m]}
            - {id: m, type: shell}
            - {id: a, type: shell}
            - {id: b, type: shell, depends_on: [z, a]}
    """)
    assert list(plan.nodes) == ["m", "z", "a", "b"]


def test_unknown_references_everywhere():
    assert errors(HEADER + """
          tasks:
            - id: a
              type: shell
              skip_if: "${tasks.nope.status == 'FAILED'}"
              compensation: {task_id: undo}
          control_flow:
            conditions:
              - id: cond
                if: ${tasks.missing.output}
                depends_on: [gone]
                then: [a, ghost]
          outputs:
            mappings:
              total: "n=${tasks.nothing.output}"
          error_handling:
            catch:
              - {error_types: [HttpError], handler: cond}
              - {handler: nobody}
            finally: [vanished]
    """) == [
        "wf.yaml:6:19: task 'a' depends on unknown task 'nope'",
        "wf.yaml:7:31: compensation of task 'a' names unknown task 'undo'",
        "wf.yaml:11:15: condition 'cond' depends on unknown task 'missing'",
        "wf.yaml:12:22: condition 'cond' depends on unknown task 'gone'",
        "wf.yaml:13:19: condition 'cond' lists unknown task 'ghost' in 'then'",
        "wf.yaml:16:19: output 'total' refers to unknown task 'nothing'",
        "wf.yaml:19:45: catch handler must name a task, not condition 'cond'",
        "wf.yaml:20:19: catch handler names unknown task 'nobody'",
        "wf.yaml:21:15: finally names unknown task 'vanished'",
    ]


def test_a_task_belongs_to_one_branch_only():
    assert errors(HEADER + """
          tasks:
            - {id: a, type: shell}
          control_flow:
            conditions:
              - {id: c1, if: true, then: [a]}
              - {id: c2, if: false, else: [a]}
    """) == ["wf.yaml:8:36: task 'a' is already listed in 'then' of condition 'c1'"]


def test_depends_on_a_condition_waits_for_it():
    plan = compiled(HEADER + """
          tasks:
            - {id: a, type: shell}
            - {id: after, type: shell, depends_on: [c]}
          control_flow:
            conditions:
              - {id: c, if: true, then: [a]}
    """)
    assert list(plan.nodes) == ["c", "a", "after"]
    assert plan.nodes["after"].deps == ("c",)
    assert plan.nodes["c"].line == 8 and plan.nodes["c"].col == 10


# --- expressions: columns in every scalar style --------------------------------------------------

def test_expression_error_columns():
    assert errors(HEADER + """
          tasks:
            - id: plain
              type: shell
              when: ${inputs.x +}
              config:
                command: echo ${inputs.a ==}
                single: 'a ${1 +}'
                double: "ab ${)}"
                block: |
                  first line
                    second ${inputs.b ** 2}
                folded: >
                  one
                  two ${(}
    """) == [
        "wf.yaml:6:25: expression error: unexpected end of expression",
        "wf.yaml:8:36: expression error: unexpected end of expression",
        "wf.yaml:9:25: expression error: unexpected end of expression",
        "wf.yaml:10:23: expression error: unexpected ')'",
        "wf.yaml:13:32: expression error: unexpected '*'",
        "wf.yaml:16:18: expression error: unexpected end of expression",
    ]


def test_expressions_are_checked_in_every_expression_field():
    lines = errors(HEADER + """
          tasks:
            - id: t
              type: shell
              skip_if: ${(}
              requires_approval: {approvers: ["${(}"]}
              outputs: [{name: o, value: "${(}"}]
          control_flow:
            conditions:
              - {id: c, if: "${(}"}
          outputs:
            mappings: {m: "${(}"}
    """)
    assert lines == [
        f"wf.yaml:{pos}: expression error: unexpected end of expression"
        for pos in ("6:19", "7:43", "8:38", "11:25", "13:23")
    ]


def test_python_code_is_not_parsed_as_expressions():
    plan = compiled(HEADER + """
          tasks:
            - {id: other, type: shell}
            - id: p
              type: python
              config:
                code: |
                  print("${(} ${tasks.other.output}")
    """)
    assert plan.nodes["p"].deps == ()


# --- task types and durations ----------------------------------------------------------------------

def test_type_specific_config_checks():
    assert errors(HEADER + """
          tasks:
            - {id: p, type: python}
            - {id: p2, type: python, config: {code: 5}}
            - {id: c, type: custom, config: {handler: "not a path"}}
            - {id: c2, type: custom, config: {handler: "pkg.mod:run", parameters: {a: 1}}}
            - {id: w, type: wait, config: {event: 7}}
            - {id: w2, type: wait, config: {duration: 3 days}}
            - {id: w3, type: wait, config: {duration: "${inputs.delay}"}}
            - {id: cb, type: callback, config: {timeout: never}}
            - {id: ap, type: approval, config: {approvers: [x], timeout: soon, colour: red}}
    """, DeploymentLimits(custom_modules=("pkg",))) == [
        "wf.yaml:4:7: a python task needs 'config.code' (Python source)",
        "wf.yaml:5:45: invalid code 5: input should be a valid string",
        "wf.yaml:6:47: invalid handler 'not a path' (expected 'module:function')",
        "wf.yaml:8:35: event '7' must be 1 to 128 letters, digits or . _ : @ -, starting with a letter or digit",
        "wf.yaml:9:47: invalid duration '3 days'",
        "wf.yaml:11:50: invalid duration 'never'",
        "wf.yaml:12:66: invalid duration 'soon'",
        "wf.yaml:12:72: unknown field 'colour' in config of task 'ap'",
    ]


def test_durations_everywhere_are_checked():
    assert errors("""
        workflow:
          metadata: {id: d}
          config:
            timeout: forever
            retry_policy: {max_delay: 1 hour}
            human_in_the_loop: {default_timeout: P1M}
          tasks:
            - id: a
              type: shell
              timeout: PT10M
              retry: {delay: soon}
              requires_approval:
                timeout: 2 days
                escalation_policy: {action: escalate, timeout: x}
    """) == [
        "wf.yaml:4:14: invalid duration 'forever'",
        "wf.yaml:5:31: invalid duration '1 hour'",
        "wf.yaml:6:42: invalid duration 'P1M'",
        "wf.yaml:11:22: invalid duration 'soon'",
        "wf.yaml:13:18: invalid duration '2 days'",
        "wf.yaml:14:56: invalid duration 'x'",
    ]


def test_retry_resolution():
    plan = compiled("""
        workflow:
          metadata: {id: r}
          config:
            max_retries: 4
            retry_policy: {strategy: exponential, delay: 1s, jitter: full, retryable_errors: [HttpError]}
          tasks:
            - {id: a, type: shell}
            - {id: b, type: shell, retry: {max_attempts: 1}}
            - {id: c, type: shell, retry: {strategy: fixed, initial_delay: 250ms, max_delay: 5m}}
    """)
    a, b, c = (plan.nodes[n].retry for n in "abc")
    assert (a.max_attempts, a.strategy, a.delay, a.jitter, a.retryable_errors) == (
        5, "exponential", 1.0, "full", ("HttpError",))
    assert b.max_attempts == 1 and b.strategy == "exponential"
    assert (c.max_attempts, c.strategy, c.delay, c.max_delay) == (5, "fixed", 0.25, 300.0)
    assert compiled(HEADER + "\n          tasks: [{id: a, type: shell}]\n").nodes["a"].retry.max_attempts == 1


def test_retry_delay_and_initial_delay_conflict():
    assert errors(HEADER + """
          tasks:
            - {id: a, type: shell, retry: {delay: 1s, initial_delay: 2s}}
    """) == ["wf.yaml:4:35: use either 'delay' or 'initial_delay', not both"]


def test_requires_approval_disabled():
    plan = compiled(HEADER + """
          tasks:
            - {id: a, type: shell, requires_approval: {enabled: false, approvers: [x]}}
    """)
    assert plan.nodes["a"].requires_approval is None


# --- schemas ---------------------------------------------------------------------------------------

def test_input_schema_is_checked_and_required_merged():
    assert errors(HEADER + """
          inputs:
            schema:
              type: object
              properties:
                n: {type: integr}
          outputs:
            schema: {type: 5}
    """) == [
        "wf.yaml:7:19: invalid input schema: 'integr' is not valid under any of the given schemas",
        "wf.yaml:9:20: invalid output schema: 5 is not valid under any of the given schemas",
    ]
    plan = compiled(HEADER + """
          inputs:
            schema: {type: object, required: [a]}
            required: [b, a]
    """)
    assert plan.input_schema == {"type": "object", "required": ["a", "b"]}


# --- blocks not supported yet ----------------------------------------------------------------------

def test_blocks_are_validated_in_one_pass():
    assert errors(HEADER + """
          tasks:
            - {id: after, type: shell, depends_on: [each, both, child]}
          control_flow:
            loops:
              - id: each
                items: ${inputs.list}
                tasks:
                  - {id: body, type: shel}
              - {id: again, type: while}
            parallel:
              - id: both
                branches:
                  - name: left
                    tasks: [after]
          sub_workflows:
            - {id: child, workflow_ref: "other@1.0.0", inputs: {x: "${tasks.nope.output}"}}
    """) == [
        "wf.yaml:4:51: task 'after' is in parallel block 'both' and cannot depend on it",
        f"wf.yaml:10:30: unknown task type 'shel' (did you mean 'shell'? expected one of: {TYPES})",
        "wf.yaml:11:9: a while loop needs 'condition'",
        "wf.yaml:18:63: sub-workflow 'child' depends on unknown task 'nope'",
    ]


def test_a_while_loop_cannot_run_its_iterations_in_parallel():
    """Before, it compiled: with no max_concurrent the worker failed on every delivery and the run stayed RUNNING."""
    for kind in ("while", "do_while"):
        assert errors(HEADER + f"""
          control_flow:
            loops:
              - id: again
                type: {kind}
                condition: "${{variables.n < 3}}"
                parallel: true
                tasks:
                  - {{id: body, type: shell}}
        """) == [f"wf.yaml:5:9: 'parallel' is for a for_each loop: a {kind} loop's next iteration waits on its "
                 "condition, evaluated after the iteration before"]


# --- files ----------------------------------------------------------------------------------------

def test_load_and_compile_reports_the_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("workflow:\n  metadata: {id: x}\n  tasks: [{id: a, type: nope}]\n")
    with pytest.raises(WorkflowError) as info:
        load_and_compile(path)
    assert str(info.value).startswith(f"{path}:3:25: unknown task type 'nope'")
    with pytest.raises(WorkflowError, match="cannot read file"):
        load_and_compile(tmp_path / "missing.yaml")


def test_a_parallel_block_member_cannot_depend_on_its_block():
    assert errors(HEADER + """
          tasks:
            - {id: a, type: python, config: {code: "x=1"}}
          control_flow:
            parallel:
              - id: both
                branches:
                  - name: left
                    tasks: [{id: l1, type: python, depends_on: [both], config: {code: "x=1"}}]
    """) == ["wf.yaml:10:57: task 'l1' is in parallel block 'both' and cannot depend on it"]


def test_notification_channels_are_the_default_channels_of_approvals():
    """docs/reference.md (human_in_the_loop, approval): an approval that names no `channels` uses
    `config.human_in_the_loop.notification_channels`, else `email`; its own `channels` win."""
    plan = compiled(HEADER + """
          config:
            human_in_the_loop: {notification_channels: [sms, webhook]}
          tasks:
            - {id: ask, type: approval, config: {approvers: [a@example.com]}}
            - {id: own, type: approval, config: {approvers: [a@example.com], channels: [email]}}
            - {id: gated, type: python, requires_approval: {approvers: [a@example.com]}, config: {code: "result = 1"}}
        """)
    assert plan.nodes["ask"].config["channels"] == ["sms", "webhook"]
    assert plan.nodes["own"].config["channels"] == ["email"]
    assert plan.nodes["gated"].requires_approval.channels == ("sms", "webhook")
    plain = compiled(HEADER + """
          tasks:
            - {id: ask, type: approval, config: {approvers: [a@example.com]}}
        """)
    assert plain.nodes["ask"].config["channels"] == ["email"]
