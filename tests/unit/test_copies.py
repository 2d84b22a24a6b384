"""Copies of records (infra/copies.py): the caller's to change, nothing shared with the original but
what cannot change (atoms, frozensets) and a run's inputs (which never change after the start)."""

from __future__ import annotations

from dataclasses import fields

from infra.copies import record_copy, run_copy, task_copy
from infra.ports import RunRecord, TaskRecord


def a_task() -> TaskRecord:
    return TaskRecord("t", status="COMPLETED", output={"rows": [{"a": 1}]}, error={"type": "E", "details": [1]},
                      approval={"title": "x", "approvers": ["a@example.com"]}, role_ctx={"item": [1, 2]},
                      resolved=frozenset({"d"}), attempt_log=[{"attempt": 1, "status": "FAILED"}],
                      child_inputs={"k": [1]}, catch={"handler": "h"}, loop_state={"total": 3},
                      last_change={"reason": "r", "at": "t", "cause_kind": "", "cause_name": "", "cause_subject": ""})


def nested(value) -> bool:
    return isinstance(value, (dict, list, set))


def test_a_task_copy_is_equal_and_shares_no_changeable_part():
    original = a_task()
    copy = task_copy(original)
    assert copy == original and copy is not original
    for field in fields(TaskRecord):
        value = getattr(original, field.name)
        if nested(value):
            assert getattr(copy, field.name) is not value, field.name
    copy.output["rows"][0]["a"] = 2
    copy.attempt_log.append({"attempt": 2})
    copy.approval["approvers"].append("b@example.com")
    assert original == a_task()


def test_a_run_copy_shares_only_its_inputs():
    run = RunRecord("r", "p", "w", inputs={"items": list(range(5))}, variables={"v": [1]}, outputs={"o": [1]},
                    error={"type": "E"}, end_comps=[["c", "t"]], parent={"run": "x"})
    copy = run_copy(run)
    assert copy == run and copy.inputs is run.inputs
    copy.variables["v"].append(2)
    copy.outputs["o"].append(2)
    copy.end_comps[0].append("u")
    copy.parent["run"] = "y"
    assert (run.variables, run.outputs, run.end_comps, run.parent) == ({"v": [1]}, {"o": [1]}, [["c", "t"]],
                                                                       {"run": "x"})


def test_a_dict_of_records_is_copied_record_by_record():
    records = {"t": a_task(), "u": None}
    copy = record_copy(records)
    assert copy == records and copy is not records and copy["t"] is not records["t"]
    assert record_copy(None) is None
