"""How DynamoStore lays records out: each attribute's type comes from its record field's type.

A field added to RunRecord, TaskRecord or TokenRecord must be stored with its own DynamoDB type
(not silently as a string), and every field of every record must read back as it was written.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.aws.claims import JsonAttributes
from infra.aws.dynamo_items import (
    RUN,
    TASK,
    TOKEN,
    Kind,
    Layout,
    kind_of,
    task_from_item,
    task_put,
    task_sk,
    task_update,
)
from infra.ports import TaskChange, TaskRecord

CODEC = JsonAttributes()  # no payload bucket: every JSON value inline
LAYOUTS = {"run": (RUN, {}), "task": (TASK, {"task_id": "t-1"}), "token": (TOKEN, {})}
SAMPLES = {  # a value of each kind that no field has as its default
    Kind.STRING: "v ✓",
    Kind.NUMBER: 2**53 + 7,
    Kind.BOOL: True,
    Kind.STRING_SET: frozenset({"x", "ü"}),
    Kind.JSON: {"k": [1, 2.5, None, "é", {"deep": False}]},
    Kind.JSON_MAP: {"a": {"deep": [1, None]}, "b": None, "c": "text"},
    Kind.INLINE_JSON: {"reason": "why ✓", "at": "t"},
}
ATTRIBUTE_TYPE = {Kind.STRING: "S", Kind.NUMBER: "N", Kind.BOOL: "BOOL", Kind.STRING_SET: "SS", Kind.JSON: "S",
                  Kind.JSON_MAP: "M", Kind.INLINE_JSON: "S"}


def full(layout: Layout, outside: dict[str, Any]) -> Any:
    """A record with a non-default value in every field."""
    return layout.record(**outside, **{name: SAMPLES[slot.kind] for name, slot in layout.slots.items()})


@pytest.mark.parametrize("hint, kind", [
    (str, Kind.STRING), (str | None, Kind.STRING), (int, Kind.NUMBER), (int | None, Kind.NUMBER),
    (bool, Kind.BOOL), (bool | None, Kind.BOOL), (frozenset[str], Kind.STRING_SET), (Any, Kind.JSON),
    (dict[str, Any], Kind.JSON), (dict[str, Any] | None, Kind.JSON), (list[list[str]] | None, Kind.JSON),
])
def test_the_kind_comes_from_the_type(hint, kind) -> None:
    assert kind_of(hint) is kind


@pytest.mark.parametrize("hint", [float, tuple[str, ...], int | str, frozenset[int], bytes])
def test_a_type_with_no_mapping_is_refused_not_stored_as_a_string(hint) -> None:
    with pytest.raises(TypeError, match="no DynamoDB type"):
        kind_of(hint)


def test_a_new_field_of_each_kind_round_trips_with_its_type() -> None:
    # A TaskRecord as it would be with one more field of each kind, and no other change anywhere.
    extra = [("n_new", int, 0), ("b_new", bool, False), ("s_new", str | None, None),
             ("set_new", frozenset[str], frozenset()), ("json_new", dict[str, Any] | None, None),
             ("any_new", Any, None)]
    grown = dataclasses.make_dataclass("GrownTask", [(n, t, dataclasses.field(default=d)) for n, t, d in extra],
                                       bases=(TaskRecord,))
    layout = Layout.of(grown, outside=("task_id",))
    assert {n: layout.slots[n].kind for n, _, _ in extra} == {
        "n_new": Kind.NUMBER, "b_new": Kind.BOOL, "s_new": Kind.STRING, "set_new": Kind.STRING_SET,
        "json_new": Kind.JSON, "any_new": Kind.JSON}
    values = {"n_new": 41, "b_new": True, "s_new": "ü", "set_new": frozenset({"a"}), "json_new": {"x": [1.5]},
              "any_new": [None, 2]}
    item = layout.item(CODEC, grown("t", **values))
    assert {n: next(iter(item[n])) for n in values} == {
        "n_new": "N", "b_new": "BOOL", "s_new": "S", "set_new": "SS", "json_new": "S", "any_new": "S"}
    back = layout.record_of(CODEC, item, task_id="t")
    assert {n: getattr(back, n) for n in values} == values
    assert type(back.n_new) is int and type(back.b_new) is bool and type(back.set_new) is frozenset
    # The task update path encodes a new field by its type too.
    assert layout.encode(CODEC, "n_new", 3) == {"N": "3"}


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_field_of_every_record_round_trips(name: str) -> None:
    layout, outside = LAYOUTS[name]
    record = full(layout, outside)
    for field_name, slot in layout.slots.items():  # else a field lost on the way would go unseen
        try:
            assert getattr(record, field_name) != slot.absent(), f"{field_name}'s sample is its default"
        except ValueError:
            pass  # a required field: it has no default
    item = layout.item(CODEC, record)
    assert {slot.attribute: next(iter(item[slot.attribute])) for slot in layout.slots.values()} == {
        slot.attribute: ATTRIBUTE_TYPE[slot.kind] for slot in layout.slots.values()}
    back = layout.record_of(CODEC, item, **outside)
    assert back == record
    assert [type(getattr(back, n)) for n in layout.slots] == [type(getattr(record, n)) for n in layout.slots]


@pytest.mark.parametrize("name", LAYOUTS)
def test_a_record_of_defaults_round_trips_and_stores_no_empty_values(name: str) -> None:
    layout, outside = LAYOUTS[name]
    required = {"run": {"run_id": "r", "plan_hash": "h", "workflow_id": "w"}, "task": {},
                "token": {"token_hash": "t", "run_id": "r", "task_id": "a", "attempt": 1, "kind": "callback",
                          "plan_hash": "h", "expires_at": None}}[name]
    record = layout.record(**outside, **required)
    item = layout.item(CODEC, record)
    assert all(value not in ({"SS": []}, {"NULL": True}) for value in item.values())
    assert layout.record_of(CODEC, item, **outside) == record


def test_the_run_item_keeps_its_attribute_names() -> None:
    # Items written before this layout was derived must still read: the names are the stored ones.
    assert (RUN.slots["run_id"].attribute, RUN.slots["variables"].attribute) == ("pk", "vars")
    assert TOKEN.slots["token_hash"].attribute == "pk"
    assert "task_id" not in TASK.slots  # in the sort key


def test_every_record_round_trips_through_dynamodb(runs_table) -> None:
    db = runs_table
    for name, (layout, outside) in LAYOUTS.items():
        record = full(layout, outside)
        item = layout.item(CODEC, record)
        key = {"pk": item.get("pk", {"S": "run-1"}), "sk": {"S": name}}  # a task's id is in its sort key
        db.put_item(TableName="runs", Item={**item, **key})
        stored = db.get_item(TableName="runs", Key=key, ConsistentRead=True)["Item"]
        assert layout.record_of(CODEC, stored, **outside) == record


# A change to a task with no item is written as a PutItem (task_put), every other as an UpdateItem
# (task_update): the put must store what the update would have, and refuse where the update would.
ABSENT_CHANGES = {
    "carried claim": TaskChange(status="RUNNING", from_status=(None,), absent=True,
                                set={"attempt": 1, "resolved": frozenset({"a"}), "deps_ok": 1, "lease_until": "t9"}),
    "claimed and ended": TaskChange(status="COMPLETED", from_status=(None,), absent=True, epoch=0, votes=0,
                                    set={"attempt": 1, "output": {"woke_at": "t1", "n": [1, None]},
                                         "error": None, "ended_at": "t1"}),
    "skipped": TaskChange(status="SKIPPED", from_status=(None, "PENDING"), absent=True,
                          lease_expired_before="t5", set={"forced_skip": True, "ended_at": "t2"}),
}
REFUSED_ON_NO_ITEM = {  # conditions no missing item meets: the update refuses, so must the put
    "an epoch": TaskChange(status="RUNNING", from_status=(None,), absent=True, epoch=2, set={"attempt": 1}),
    "an attempt": TaskChange(status="RUNNING", from_status=(None,), absent=True, attempt=1),
    "a vote count": TaskChange(status="RUNNING", from_status=(None,), absent=True, votes=1),
}


def _by_update(db, task_id: str, change: TaskChange) -> dict:
    key = {"pk": {"S": "run-1"}, "sk": {"S": task_sk(task_id)}}
    return db.update_item(TableName="runs", Key=key, ReturnValues="ALL_NEW", **task_update(CODEC, change))["Attributes"]


def _by_put(db, task_id: str, change: TaskChange) -> dict:
    put = task_put(CODEC, "run-1", task_id, change)
    db.put_item(TableName="runs", **put)
    return put["Item"]


def _stored(db, task_id: str) -> dict | None:
    key = {"pk": {"S": "run-1"}, "sk": {"S": task_sk(task_id)}}
    return db.get_item(TableName="runs", Key=key, ConsistentRead=True).get("Item")


@pytest.mark.parametrize("name", sorted(ABSENT_CHANGES))
def test_a_put_for_a_task_with_no_item_stores_what_the_update_would(runs_table, name: str) -> None:
    change = ABSENT_CHANGES[name]
    updated = _by_update(runs_table, "by-update", change)
    written = _by_put(runs_table, "by-put", change)
    stored = _stored(runs_table, "by-put")
    assert stored == written  # what the store returns without reading is what is stored
    assert {k: v for k, v in stored.items() if k != "sk"} == {k: v for k, v in updated.items() if k != "sk"}
    assert task_from_item(CODEC, "t", stored) == task_from_item(CODEC, "t", updated)
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):  # an item there now: both refuse
        _by_put(runs_table, "by-update", change)
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        _by_update(runs_table, "by-put", change)


@pytest.mark.parametrize("name", sorted(REFUSED_ON_NO_ITEM))
def test_a_put_for_a_task_with_no_item_refuses_where_the_update_would(runs_table, name: str) -> None:
    change = REFUSED_ON_NO_ITEM[name]
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        _by_update(runs_table, "a", change)
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        _by_put(runs_table, "a", change)
    assert _stored(runs_table, "a") is None


def test_only_a_change_conditioned_on_no_item_is_a_put() -> None:
    with pytest.raises(ValueError):
        task_put(CODEC, "run-1", "a", TaskChange(status="RUNNING", from_status=(None,)))
