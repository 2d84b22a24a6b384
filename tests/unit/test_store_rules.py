"""loopline/store_rules.py: the copy a change's values get before a store keeps them."""

from __future__ import annotations

from infra.ports import TaskChange, TaskRecord
from loopline.store_rules import changed, copied


def test_copied_copies_json_values_all_the_way_down_and_anything_else_with_deepcopy() -> None:
    value = {"output": {"rows": [{"n": 1}, [2, 3]]}, "flag": True, "n": 1.5, "none": None,
             "odd": {"a set": {1, 2}}, "pair": (1, [2])}
    copy = copied(value)
    assert copy == value
    assert copy["output"] is not value["output"]
    assert copy["output"]["rows"][0] is not value["output"]["rows"][0]
    assert copy["output"]["rows"][1] is not value["output"]["rows"][1]
    assert copy["odd"]["a set"] is not value["odd"]["a set"]  # a set: copy.deepcopy's
    assert copy["pair"][1] is not value["pair"][1]  # a tuple holding a list: copy.deepcopy's


def test_a_changed_record_shares_nothing_with_the_change() -> None:
    change = TaskChange(status="COMPLETED", from_status=(None,), set={"output": {"rows": [1]}, "attempt": 1})
    record = changed(TaskRecord("a"), "a", change)
    change.set["output"]["rows"].append(2)
    assert record.output == {"rows": [1]} and record.status == "COMPLETED" and record.attempt == 1


def test_a_change_of_a_field_a_task_does_not_have_is_refused() -> None:
    import pytest

    with pytest.raises(TypeError):
        changed(TaskRecord("a"), "a", TaskChange(status="COMPLETED", from_status=(None,), set={"no_such": 1}))


def test_a_changed_record_is_a_new_one_the_current_one_untouched() -> None:
    current = TaskRecord("a", status="RUNNING", attempt=1, output={"n": 1})
    record = changed(current, "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), set={"output": 2}))
    assert record is not current and record == TaskRecord("a", status="COMPLETED", attempt=1, output=2)
    assert current == TaskRecord("a", status="RUNNING", attempt=1, output={"n": 1})
