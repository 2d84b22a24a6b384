"""The migration planner (statemachine/migration.py): what a migration does with each task, and each refusal."""

from __future__ import annotations

import pytest

from statemachine.compat import compare
from statemachine.migration import Action, MigrationPlan, MigrationRefused, TaskState, plan_migration
from tests.conftest import compile_yaml

V1 = """
workflow:
  metadata: {id: order, version: "1.0.0"}
  tasks:
    - {id: prepare, type: python, config: {code: "result = 1"}}
    - {id: review, type: approval, depends_on: [prepare], config: {approvers: [a@example.com]}}
    - {id: ship, type: python, depends_on: [review], config: {code: "result = 2"}}
"""

# v2: prepare renamed to draft, a task added after the approval.
V2 = """
workflow:
  metadata: {id: order, version: "2.0.0"}
  tasks:
    - {id: draft, renamed_from: prepare, type: python, config: {code: "result = 1"}}
    - {id: review, type: approval, depends_on: [draft], config: {approvers: [a@example.com]}}
    - {id: notify, type: python, depends_on: [review], config: {code: "result = 3"}}
    - {id: ship, type: python, depends_on: [notify], config: {code: "result = 2"}}
"""

DONE, WAITING = TaskState("COMPLETED"), TaskState("WAITING", "approval")


def migrate(old_text: str, new_text: str, states: dict[str, TaskState]):
    old, new = compile_yaml(old_text), compile_yaml(new_text)
    return plan_migration(old, new, dict(compare(old, new).task_map), states)


def actions(outcome) -> list[tuple[str, Action, str | None]]:
    assert isinstance(outcome, MigrationPlan), outcome.lines()
    return [(m.task, m.action, m.renamed_from) for m in outcome.moves]


def reasons(outcome) -> dict[str, str]:
    assert isinstance(outcome, MigrationRefused), outcome
    return {b.task: b.reason for b in outcome.blockers}


def test_a_waiting_run_keeps_what_ended_renamed_keeps_its_wait_and_adds_the_new_task():
    outcome = migrate(V1, V2, {"prepare": DONE, "review": WAITING})
    assert actions(outcome) == [("draft", Action.KEEP, "prepare"), ("review", Action.KEEP_WAITING, None),
                                ("notify", Action.ADD, None), ("ship", Action.RE_EVALUATE, None)]
    assert outcome.renames == {"prepare": "draft"}
    assert outcome.ended == {"draft"}
    assert outcome.lines()[0] == "migrate order 1.0.0 -> 2.0.0"
    assert "  keep: 'draft' (was 'prepare'), completed" in outcome.lines()
    assert outcome.to_json()["tasks"][0] == {"task": "draft", "action": "keep", "status": "COMPLETED",
                                             "renamed_from": "prepare"}


def test_a_run_that_has_not_started_a_task_re_evaluates_everything():
    outcome = migrate(V1, V2, {})
    assert [a for _, a, _ in actions(outcome)] == [Action.RE_EVALUATE, Action.RE_EVALUATE, Action.ADD,
                                                    Action.RE_EVALUATE]


def test_a_removed_task_that_never_ran_or_ended_without_compensation_is_dropped():
    v2 = V1.replace('"1.0.0"', '"2.0.0"').replace(
        "    - {id: ship, type: python, depends_on: [review], config: {code: \"result = 2\"}}\n", "")
    assert actions(migrate(V1, v2, {"prepare": DONE, "review": WAITING}))[-1] == ("ship", Action.DROP, None)
    v2 = V1.replace('"1.0.0"', '"2.0.0"').replace("    - {id: prepare, type: python, config: {code: \"result = 1\"}}\n",
                                                  "").replace("depends_on: [prepare], ", "")
    outcome = migrate(V1, v2, {"prepare": DONE, "review": WAITING})
    assert actions(outcome) == [("review", Action.KEEP_WAITING, None), ("ship", Action.RE_EVALUATE, None),
                                ("prepare", Action.DROP, None)]


@pytest.mark.parametrize("status", ["RUNNING", "RETRYING", "READY"])
def test_a_task_mid_attempt_refuses_whatever_the_new_version_does_with_it(status):
    why = reasons(migrate(V1, V2, {"prepare": TaskState(status)}))
    assert why == {"prepare": "an attempt is under way: migrating would lose its effect or repeat it"}


def test_a_waiting_task_the_new_version_renames_or_removes_refuses():
    renamed = V2.replace("{id: review, type", "{id: check, renamed_from: review, type").replace(
        "depends_on: [review]", "depends_on: [check]")
    why = reasons(migrate(V1, renamed, {"prepare": DONE, "review": WAITING}))
    assert why == {"review": "it is waiting, and version 2.0.0 renames it to 'check': its links and timers name it"}
    review = "    - {id: review, type: approval, depends_on: [prepare], config: {approvers: [a@example.com]}}\n"
    removed = V1.replace('"1.0.0"', '"2.0.0"').replace(review, "").replace("depends_on: [review]",
                                                                           "depends_on: [prepare]")
    why = reasons(migrate(V1, removed, {"prepare": DONE, "review": WAITING}))
    assert why == {"review": "it is waiting, and version 2.0.0 removes it: its answer would be lost"}


def test_a_changed_type_refuses_a_completed_or_waiting_task_and_re_evaluates_a_pending_one():
    retyped = V2.replace("{id: review, type: approval, depends_on: [draft], config: {approvers: [a@example.com]}}",
                         "{id: review, type: wait, depends_on: [draft], config: {duration: 1h}}")
    why = reasons(migrate(V1, retyped, {"prepare": DONE, "review": WAITING}))
    assert why == {"review": "it is an approval task here and a wait task in version 2.0.0: what it waits for is gone"}
    retyped = V2.replace("{id: draft, renamed_from: prepare, type: python, config: {code: \"result = 1\"}}",
                         "{id: draft, renamed_from: prepare, type: wait, config: {duration: 1h}}")
    why = reasons(migrate(V1, retyped, {"prepare": DONE, "review": WAITING}))
    assert why == {"prepare": "it is a python task here and a wait task in version 2.0.0: "
                              "its output cannot be used there"}
    assert actions(migrate(V1, retyped, {}))[0] == ("draft", Action.RE_EVALUATE, "prepare")


def test_an_approval_gate_added_to_a_waiting_task_refuses():
    v1 = V1.replace("{id: review, type: approval, depends_on: [prepare], config: {approvers: [a@example.com]}}",
                    "{id: review, type: callback, depends_on: [prepare], config: {timeout: 1h}}")
    v2 = v1.replace('"1.0.0"', '"2.0.0"').replace(
        "config: {timeout: 1h}}", "config: {timeout: 1h}, requires_approval: {approvers: [b@example.com]}}")
    why = reasons(migrate(v1, v2, {"prepare": DONE, "review": TaskState("WAITING", "callback")}))
    assert why == {"review": "it is waiting, and version 2.0.0 adds its approval gate"}


def test_a_completed_task_with_a_compensation_cannot_be_removed():
    v1 = V1.replace("{id: prepare, type: python, config: {code: \"result = 1\"}}",
                    "{id: prepare, type: python, config: {code: \"result = 1\"}, compensation: {task_id: undo}}\n"
                    "    - {id: undo, type: python, config: {code: \"result = 0\"}}")
    v2 = V1.replace('"1.0.0"', '"2.0.0"').replace("    - {id: prepare, type: python, config: {code: \"result = 1\"}}\n",
                                                  "").replace("depends_on: [prepare], ", "")
    why = reasons(migrate(v1, v2, {"prepare": DONE, "review": WAITING}))
    assert why == {"prepare": "it completed and declares a compensation, and version 2.0.0 removes it: "
                              "it could no longer be undone"}


def test_a_kept_task_that_gains_a_dependency_not_ended_here_would_run_again():
    # v2 puts a new check before the approval that is already waiting: it asked too early.
    check = "    - {id: check, type: python, config: {code: \"result = 4\"}}\n"
    v2 = V1.replace('"1.0.0"', '"2.0.0"').replace("    - {id: review,", check + "    - {id: review,").replace(
        "depends_on: [prepare], config: {approvers", "depends_on: [prepare, check], config: {approvers")
    why = reasons(migrate(V1, v2, {"prepare": DONE, "review": WAITING}))
    assert why == {"review": "version 2.0.0 makes it wait for 'check', which has not ended here: it would have to "
                             "run again"}
    # Before the approval was asked, the same version is fine: the approval is re-evaluated.
    assert ("review", Action.RE_EVALUATE, None) in actions(migrate(V1, v2, {"prepare": DONE}))


LOOP = """
workflow:
  metadata: {id: order, version: "%s"}
  tasks:
    - {id: after, type: python, depends_on: [each], config: {code: "result = 2"}}
  control_flow:
    loops:
      - id: each
        items: [1, 2]
        tasks:
          - {id: step, type: python, config: {code: "result = 1"}}
"""


def test_a_loop_in_progress_and_its_iterations_refuse_and_an_ended_loop_is_kept():
    why = reasons(migrate(LOOP % "1.0.0", LOOP % "1.1.0", {"each": TaskState("WAITING", "loop"),
                                                          "each.0": TaskState("RUNNING"),
                                                          "step@each.0": TaskState("RUNNING")}))
    assert why["each"] == "a loop in progress: what it runs follows the old plan"
    assert set(why) == {"each", "each.0", "step@each.0"}
    kept = migrate(LOOP % "1.0.0", LOOP % "1.1.0", {"each": DONE, "each.0": DONE, "step@each.0": DONE})
    assert actions(kept) == [("each", Action.KEEP, None), ("after", Action.RE_EVALUATE, None)]
    assert "step" not in [m.task for m in kept.moves]  # a body task is its loop's


def test_a_run_moves_only_between_versions_of_its_workflow():
    other = V2.replace("id: order", "id: invoice")
    assert reasons(migrate(V1, other, {})) == {"$run": "a run moves only between versions of its workflow 'order'"}


def test_a_refusal_lists_every_blocking_task_in_its_report():
    outcome = migrate(V1, V2, {"prepare": TaskState("RUNNING"), "ship": TaskState("RUNNING")})
    assert isinstance(outcome, MigrationRefused) and not outcome.allowed
    assert outcome.lines() == [
        "cannot migrate order 1.0.0 -> 2.0.0:",
        "  'prepare' (running): an attempt is under way: migrating would lose its effect or repeat it",
        "  'ship' (running): an attempt is under way: migrating would lose its effect or repeat it"]
    assert outcome.to_json()["blockers"][0] == {
        "task": "prepare", "status": "RUNNING",
        "reason": "an attempt is under way: migrating would lose its effect or repeat it"}
