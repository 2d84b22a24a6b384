"""The compatibility report (statemachine/compat.py): every change kind, and how each is classified."""

from __future__ import annotations

import pytest

from statemachine.compat import ChangeKind, Impact, compare, same_content
from statemachine.versions import WorkflowVersion, may_break, newest_usable, parse_ref, previous_of, version_key
from tests.conftest import compile_yaml

BASE = """
workflow:
  metadata: {id: order, version: %(version)s}
  inputs:
    schema:
      type: object
      properties:
        amount: {type: number}
        note: {type: string, description: a note}
        region: {type: string}
    required: [amount]
    defaults: {region: eu}
  outputs:
    mappings:
      total: "${tasks.charge.output}"
      receipt: "${tasks.mail.output}"
  tasks:
    - {id: check, type: python, config: {code: "result = 1"}}
    - {id: ask, type: approval, depends_on: [check], config: {approvers: [a@example.com], timeout: 1h}}
    - {id: pause, type: wait, depends_on: [ask], config: {duration: 1h}}
    - {id: charge, type: http, depends_on: [pause], config: {url: "https://pay.example.com", method: POST}}
    - {id: mail, type: email, depends_on: [charge], config: {to: a@example.com, subject: hi, body: done}}
"""


def plan(version: str = "1.0.0", edit=lambda text: text):
    return compile_yaml(edit(BASE % {"version": version}))


def kinds(report) -> list[tuple[ChangeKind, Impact, str]]:
    return [(c.kind, c.impact, c.subject) for c in report.changes]


def test_the_same_workflow_has_no_changes():
    report = compare(plan(), plan("1.0.1"))
    assert report.changes == () and not report.is_breaking
    assert report.to_json() == {"workflow_id": "order", "from": "1.0.0", "to": "1.0.1", "breaking": False,
                                "changes": []}
    assert dict(report.task_map) == {n: n for n in ("check", "ask", "pause", "charge", "mail")}


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("        note: {type: string, description: a note}\n", ""),
     [(ChangeKind.INPUT_REMOVED, Impact.BREAKING, "note")]),
    (lambda t: t.replace("required: [amount]", "required: [amount, note]"),
     [(ChangeKind.INPUT_NEWLY_REQUIRED, Impact.BREAKING, "note")]),
    (lambda t: t.replace("required: [amount]", "required: [amount, region]"), []),  # it has a default
    (lambda t: t.replace("required: [amount]", "required: [amount, vat]"),
     [(ChangeKind.INPUT_NEWLY_REQUIRED, Impact.BREAKING, "vat")]),
    (lambda t: t.replace("        region: {type: string}\n",
                         "        region: {type: string}\n        vat: {type: number}\n"),
     [(ChangeKind.INPUT_ADDED, Impact.COMPATIBLE, "vat")]),
    (lambda t: t.replace("amount: {type: number}", "amount: {type: string}"),
     [(ChangeKind.INPUT_CHANGED, Impact.BREAKING, "amount")]),
    (lambda t: t.replace("description: a note", "description: another note"), []),
    (lambda t: t.replace("defaults: {region: eu}", "defaults: {region: us}"),
     [(ChangeKind.INPUT_CHANGED, Impact.COMPATIBLE, "region")]),
    (lambda t: t.replace("      type: object\n", "      type: object\n      additionalProperties: false\n"),
     [(ChangeKind.INPUT_CHANGED, Impact.BREAKING, "inputs")]),
    (lambda t: t.replace('      receipt: "${tasks.mail.output}"\n', ""),
     [(ChangeKind.OUTPUT_REMOVED, Impact.BREAKING, "receipt")]),
    (lambda t: t.replace('      receipt: "${tasks.mail.output}"\n',
                         '      receipt: "${tasks.mail.output}"\n      id: "${tasks.check.output}"\n'),
     [(ChangeKind.OUTPUT_ADDED, Impact.COMPATIBLE, "id")]),
    (lambda t: t.replace('total: "${tasks.charge.output}"', 'total: "${tasks.charge.output.sum}"'),
     [(ChangeKind.OUTPUT_CHANGED, Impact.COMPATIBLE, "total")]),
])
def test_inputs_and_outputs(edit, expected):
    assert kinds(compare(plan(), plan("2.0.0", edit))) == expected


def test_a_task_added_removed_and_changed_in_type():
    added = plan("1.1.0",
                 lambda t: t + '    - {id: audit, type: python, depends_on: [mail], config: {code: "x = 1"}}\n')
    assert kinds(compare(plan(), added)) == [(ChangeKind.TASK_ADDED, Impact.COMPATIBLE, "audit")]
    assert kinds(compare(added, plan())) == [(ChangeKind.TASK_REMOVED, Impact.BREAKING, "audit")]
    typed = plan("2.0.0", lambda t: t.replace('{id: check, type: python, config: {code: "result = 1"}}',
                                              '{id: check, type: shell, config: {command: "true"}}'))
    assert kinds(compare(plan(), typed)) == [(ChangeKind.TASK_TYPE_CHANGED, Impact.BREAKING, "check")]
    assert compare(plan(), typed).changes[0].detail == "task 'check' changed type from python to shell"


def test_a_declared_rename_is_the_same_task_and_renames_its_references():
    renamed = plan("1.1.0", lambda t: t.replace("id: charge, type: http", "id: pay, type: http, renamed_from: charge")
                   .replace("depends_on: [charge]", "depends_on: [pay]").replace("tasks.charge.", "tasks.pay."))
    report = compare(plan(), renamed)
    # An expression naming the task is text: the output reads another task now.
    assert kinds(report) == [(ChangeKind.OUTPUT_CHANGED, Impact.COMPATIBLE, "total"),
                             (ChangeKind.TASK_RENAMED, Impact.COMPATIBLE, "pay")]
    assert report.changes[1].renamed_from == "charge" and report.changes[1].detail == "task 'charge' renamed to 'pay'"
    assert dict(report.task_map)["charge"] == "pay" and not report.is_breaking
    # Without the declaration it is one task removed and another added.
    undeclared = plan("1.1.0", lambda t: t.replace("id: charge,", "id: pay,").replace("[charge]", "[pay]")
                      .replace("tasks.charge.", "tasks.pay."))
    assert {(c.kind, c.subject) for c in compare(plan(), undeclared).changes} >= {
        (ChangeKind.TASK_REMOVED, "charge"), (ChangeKind.TASK_ADDED, "pay")}


def test_a_rename_of_a_task_the_previous_version_lacks_is_an_addition():
    renamed = plan("1.1.0", lambda t: t + '    - {id: b, type: python, renamed_from: nope, config: {code: "x = 1"}}\n')
    (change,) = compare(plan(), renamed).changes
    assert change.kind is ChangeKind.TASK_ADDED
    assert change.detail == "task 'b' added (renamed from 'nope', which version 1.0.0 does not have)"


def test_config_waits_and_approvals():
    cases = {
        "https://pay.example.com": ("https://pay2.example.com", ChangeKind.TASK_CONFIG_CHANGED, "charge", ("url",)),
        "duration: 1h": ("duration: 2h", ChangeKind.WAIT_CHANGED, "pause", ("duration",)),
        "timeout: 1h}": ("timeout: 2h}", ChangeKind.APPROVAL_CHANGED, "ask", ("timeout",)),
    }
    for old, (new, kind, task, fields) in cases.items():
        (change,) = compare(plan(), plan("1.0.1", lambda t, o=old, n=new: t.replace(o, n))).changes
        assert (change.kind, change.impact, change.subject, change.fields) == (kind, Impact.COMPATIBLE, task, fields)


def test_an_approval_gate_added_or_removed_is_breaking_and_its_settings_are_not():
    gated = plan("2.0.0", lambda t: t.replace("url: \"https://pay.example.com\", method: POST}",
                                              "url: \"https://pay.example.com\", method: POST}, "
                                              "requires_approval: {approvers: [b@example.com]}"))
    assert kinds(compare(plan(), gated)) == [(ChangeKind.APPROVAL_CHANGED, Impact.BREAKING, "charge")]
    assert kinds(compare(gated, plan())) == [(ChangeKind.APPROVAL_CHANGED, Impact.BREAKING, "charge")]
    other = plan("2.0.1", lambda t: t.replace("url: \"https://pay.example.com\", method: POST}",
                                              "url: \"https://pay.example.com\", method: POST}, "
                                              "requires_approval: {approvers: [c@example.com]}"))
    (change,) = compare(gated, other).changes
    assert (change.kind, change.impact, change.fields) == (ChangeKind.APPROVAL_CHANGED, Impact.COMPATIBLE,
                                                           ("approvers",))


def test_a_dependency_never_waited_for_is_breaking_and_one_fewer_is_not():
    audit = '    - {id: audit, type: python, config: {code: "x = 1"}}\n'
    more = plan("2.0.0", lambda t: t.replace("id: mail, type: email, depends_on: [charge]",
                                             "id: mail, type: email, depends_on: [charge, audit]") + audit)
    added, change = compare(plan(), more).changes
    assert (added.kind, added.subject) == (ChangeKind.TASK_ADDED, "audit")
    assert (change.kind, change.impact, change.detail) == (ChangeKind.DEPENDENCIES_CHANGED, Impact.BREAKING,
                                                           "task 'mail' now waits for audit")
    (change,) = compare(more, plan(more.version)).changes[:1]
    assert (change.kind, change.impact) == (ChangeKind.TASK_REMOVED, Impact.BREAKING)
    fewer = [c for c in compare(more, plan()).changes if c.kind is ChangeKind.DEPENDENCIES_CHANGED]
    assert [(c.impact, c.detail) for c in fewer] == [(Impact.COMPATIBLE, "task 'mail' no longer waits for audit")]
    # Waiting directly for what it waited for through others changes no run: compatible.
    direct = plan("1.1.0", lambda t: t.replace("id: mail, type: email, depends_on: [charge]",
                                               "id: mail, type: email, depends_on: [charge, ask]"))
    (change,) = compare(plan(), direct).changes
    assert (change.impact, change.detail) == (Impact.COMPATIBLE, "task 'mail' now waits for ask")


def test_other_task_and_workflow_settings():
    retried = plan("1.0.1", lambda t: t.replace('{id: check, type: python, config: {code: "result = 1"}}',
                                                '{id: check, type: python, retry: {max_attempts: 3}, '
                                                'config: {code: "result = 1"}}'))
    assert [(c.kind, c.fields) for c in compare(plan(), retried).changes] == [(ChangeKind.TASK_CHANGED, ("retry",))]
    timed = plan("1.0.1", lambda t: t.replace("  inputs:\n", "  config: {timeout: 1d}\n  inputs:\n", 1))
    assert kinds(compare(plan(), timed)) == [(ChangeKind.SETTING_CHANGED, Impact.COMPATIBLE, "timeout")]


def test_content_ignores_positions_and_not_the_changelog():
    moved = plan("1.0.0", lambda t: t.replace("workflow:\n", "# a comment\n\nworkflow:\n"))
    assert moved.hash != plan().hash and same_content(plan(), moved)
    logged = plan("1.0.0", lambda t: t.replace("version: 1.0.0}", "version: 1.0.0, changelog: first}"))
    assert not same_content(plan(), logged) and logged.changelog == "first"


def test_versions_rules():
    assert parse_ref("order") == ("order", None) and parse_ref("order@latest") == ("order", None)
    assert parse_ref("order@1.2.0") == ("order", "1.2.0")
    assert may_break("1.4.0", "2.0.0") and not may_break("1.4.0", "1.5.0") and may_break("0.3.0", "0.4.0")
    versions = [WorkflowVersion("w", v, v, deprecated_at="t" if v == "2.0.0" else None)
                for v in ("2.0.0", "1.10.0", "1.9.0")]
    assert newest_usable(versions).version == "1.10.0"
    assert previous_of(versions, "1.10.1").version == "1.10.0"
    assert previous_of(versions, "3.0.0").version == "2.0.0"  # deprecated or not
    assert previous_of(versions, "1.0.0") is None
    assert version_key("\u00b2.1") == version_key("0.1.0")  # not a digit to int(): never a crash
