"""DynamoDB items <-> the store's records: how DynamoStore lays a run, a task and a link out.

Each attribute's DynamoDB type is derived from the type of the record field it holds
(``Layout.of``), so a new field of ``RunRecord``, ``TaskRecord`` or ``TokenRecord`` is
stored with the right type without being listed anywhere here; a field of a type with
no mapping stops the import rather than being stored as a string. JSON values (outputs,
errors, approval requests, ...) go through ``JsonAttributes`` (infra/aws/claims.py), so
one over the claim-check threshold is an S3 claim in the item.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from statemachine.state import LastChange

from ..ports import RunRecord, TaskChange, TaskRecord, TokenRecord
from .claims import JsonAttributes

RUN_SK = "RUN"
R = TypeVar("R")


class Kind(Enum):
    """How one field is stored."""

    STRING = "S"
    NUMBER = "N"  # ints only: a float would lose its exactness (and inf/nan) in a DynamoDB number
    BOOL = "BOOL"
    STRING_SET = "SS"  # an empty set is no attribute: DynamoDB has no empty sets
    JSON = "JSON"  # any JSON value: a string attribute, or an S3 claim (claims.py)
    JSON_MAP = "JSON_MAP"  # a map of JSON values, one entry per key, so one key is one update path
    # A small, bounded JSON value always kept in the item, never claim-checked: the last_change a
    # stream consumer reads from the item's image (it cannot fetch a claim from the bucket).
    INLINE_JSON = "INLINE_JSON"


def kind_of(hint: Any) -> Kind:
    """The storage of a field typed ``hint`` (``X | None`` as ``X``: None is no attribute)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = {kind_of(arg) for arg in args if arg is not type(None)}
        if len(kinds) == 1:
            return kinds.pop()
    elif hint is bool:  # before int: a bool is an int to Python, not to DynamoDB
        return Kind.BOOL
    elif hint is int:
        return Kind.NUMBER
    elif hint is str:
        return Kind.STRING
    elif origin is frozenset and args == (str,):
        return Kind.STRING_SET
    elif hint is Any or origin in (dict, list) or typing.is_typeddict(hint):
        return Kind.JSON
    raise TypeError(f"no DynamoDB type for a field typed {hint!r}: map it in dynamo_items.kind_of")


def encode(codec: JsonAttributes, kind: Kind, value: Any) -> dict:
    if kind is Kind.JSON:
        return codec.dump(value)
    if kind is Kind.JSON_MAP:
        return {"M": {k: codec.dump(v) for k, v in value.items()}}
    if kind is Kind.INLINE_JSON:
        return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}
    if kind is Kind.NUMBER:
        return {"N": str(int(value))}
    if kind is Kind.BOOL:
        return {"BOOL": bool(value)}
    if kind is Kind.STRING_SET:
        return {"SS": sorted(value)}
    return {"S": str(value)}


def decode(codec: JsonAttributes, kind: Kind, attribute: dict) -> Any:
    if kind is Kind.JSON:
        return codec.load(attribute)
    if kind is Kind.JSON_MAP:
        return {k: codec.load(v) for k, v in attribute["M"].items()}
    if kind is Kind.INLINE_JSON:
        return json.loads(attribute["S"])
    if kind is Kind.NUMBER:
        return int(attribute["N"])
    if kind is Kind.BOOL:
        return attribute["BOOL"]
    if kind is Kind.STRING_SET:
        return frozenset(attribute["SS"])
    return attribute["S"]


@dataclass(frozen=True)
class Slot:
    """One field of a record and the attribute that holds it."""

    name: str
    attribute: str
    kind: Kind
    absent: Callable[[], Any]  # what a missing attribute reads as


def _absent(record: type, field: dataclasses.Field, hint: Any) -> Callable[[], Any]:
    """The field's default; for a field without one, None if it may be None, else an error."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory
    default = field.default
    if default is dataclasses.MISSING:
        if type(None) not in typing.get_args(hint):
            def refuse() -> Any:
                raise ValueError(f"an item of a {record.__name__} without its {field.name!r}")
            return refuse
        default = None
    return lambda: default


@dataclass(frozen=True)
class Layout(Generic[R]):
    """A record type laid out as an item."""

    record: type[R]
    slots: dict[str, Slot]

    @classmethod
    def of(cls, record: type[R], attributes: dict[str, str] | None = None, kinds: dict[str, Kind] | None = None,
           outside: tuple[str, ...] = ()) -> Layout[R]:
        """``attributes``: fields stored under another name; ``kinds``: fields whose type alone does not
        say how they are stored; ``outside``: fields kept out of the attributes (in the sort key)."""
        hints = typing.get_type_hints(record)
        slots = {f.name: Slot(f.name, (attributes or {}).get(f.name, f.name),
                              (kinds or {}).get(f.name) or kind_of(hints[f.name]), _absent(record, f, hints[f.name]))
                 for f in dataclasses.fields(record)  # type: ignore[arg-type]
                 if f.name not in outside}
        return cls(record, slots)

    def encode(self, codec: JsonAttributes, name: str, value: Any) -> dict:
        """The attribute value of the field ``name`` (not None)."""
        slot = self.slots.get(name)
        if slot is None:
            raise ValueError(f"{self.record.__name__} has no stored field {name!r}")
        return encode(codec, slot.kind, value)

    def item(self, codec: JsonAttributes, record: R) -> dict[str, dict]:
        """The record's attributes. None is no attribute, as is an empty set (DynamoDB has none)."""
        item = {}
        for slot in self.slots.values():
            value = getattr(record, slot.name)
            if value is None or (slot.kind is Kind.STRING_SET and not value):
                continue
            item[slot.attribute] = encode(codec, slot.kind, value)
        return item

    def record_of(self, codec: JsonAttributes, item: dict[str, dict], **outside: Any) -> R:
        """The record an item holds (attributes of no field, such as the sort key, are ignored)."""
        values = dict(outside)
        for slot in self.slots.values():
            attribute = item.get(slot.attribute)
            values[slot.name] = slot.absent() if attribute is None else decode(codec, slot.kind, attribute)
        return self.record(**values)


# Variables are a map of JSON values, one per variable, so one export is one ``SET vars.#n``.
RUN = Layout.of(RunRecord, attributes={"run_id": "pk", "variables": "vars"},
                kinds={"variables": Kind.JSON_MAP, "last_change": Kind.INLINE_JSON})
# The task id is in the sort key: "T#<task id>".
TASK = Layout.of(TaskRecord, outside=("task_id",), kinds={"last_change": Kind.INLINE_JSON})
TOKEN = Layout.of(TokenRecord, attributes={"token_hash": "pk"})


def task_sk(task_id: str) -> str:
    return f"T#{task_id}"


def task_from_item(codec: JsonAttributes, task_id: str, item: dict | None) -> TaskRecord:
    """A missing item reads as PENDING."""
    return TASK.record_of(codec, item, task_id=task_id) if item else TaskRecord(task_id)


def run_from_item(codec: JsonAttributes, item: dict) -> RunRecord:
    return RUN.record_of(codec, item)


def run_item(codec: JsonAttributes, run: RunRecord) -> dict[str, dict]:
    return {"sk": {"S": RUN_SK}, **RUN.item(codec, run)}


def token_from_item(codec: JsonAttributes, item: dict) -> TokenRecord:
    return TOKEN.record_of(codec, item)


def task_update(codec: JsonAttributes, change: TaskChange) -> dict[str, Any]:
    condition, names, values = task_condition(change)
    names["#st"] = "status"
    values[":status"] = {"S": change.status}
    sets, removes = ["#st = :status"], []
    for i, (name, value) in enumerate(change.set.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = TASK.encode(codec, name, value)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"UpdateExpression": expression, "ConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}


def task_put(codec: JsonAttributes, run_id: str, task_id: str, change: TaskChange) -> dict[str, Any]:
    """A change to a task that has no item (``change.absent``) as a PutItem of the whole new item.

    Where the condition holds the item is missing, so the update's SETs are the whole item and its
    REMOVEs are nothing: the put stores what the update would have, under the same condition, and the
    item written is the item stored (no ALL_NEW to ask for). The same write on AWS (one write unit
    per KB, an INSERT in the stream); moto answers a put without its update-expression machinery,
    in less than half an UpdateItem's time (bench/moto_floor.py, bench/README.md)."""
    if not change.absent:
        raise ValueError("task_put is only for a change conditioned on the task having no item")
    condition, names, values = task_condition(change)
    item = {"pk": {"S": run_id}, "sk": {"S": task_sk(task_id)}, "status": {"S": change.status}}
    for name, value in change.set.items():
        if value is not None:
            item[name] = TASK.encode(codec, name, value)
    request: dict[str, Any] = {"Item": item, "ConditionExpression": condition, "ExpressionAttributeNames": names}
    if values:
        request["ExpressionAttributeValues"] = values
    return request


def task_condition(change: TaskChange) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A task change's condition, with only the names and values it uses (a put has no SET to use the rest)."""
    names = {"#st": "status"}
    values: dict[str, Any] = {}
    allowed = [s for s in change.from_status if s is not None]
    clauses = [f"#st = :from{i}" for i in range(len(allowed))]
    for i, status in enumerate(allowed):
        values[f":from{i}"] = {"S": status}
    if None in change.from_status:
        clauses.append("attribute_not_exists(#st)")
        if "PENDING" not in allowed:
            clauses.append("#st = :pending")
            values[":pending"] = {"S": "PENDING"}
    condition = "(" + " OR ".join(clauses) + ")"
    if change.absent:
        condition += " AND attribute_not_exists(sk)"  # every item has its key: none at all
    if change.attempt is not None:
        names["#att"] = "attempt"
        values[":att"] = {"N": str(change.attempt)}
        condition += " AND #att = :att"
    if change.votes is not None:
        names["#votes"] = "votes"
        if change.votes == 0:
            condition += " AND attribute_not_exists(#votes)"
        else:
            values[":votes"] = {"N": str(change.votes)}
            condition += " AND #votes = :votes"
    if change.epoch is not None:
        names["#ep"] = "redrive"
        values[":ep"] = {"N": str(change.epoch)}
        condition += (" AND (attribute_not_exists(#ep) OR #ep = :ep)" if change.epoch == 0 else " AND #ep = :ep")
    if change.lease_expired_before is not None:
        names["#lease"] = "lease_until"
        values[":lease"] = {"S": change.lease_expired_before}
        condition += " AND (attribute_not_exists(#lease) OR #lease < :lease)"
    return condition, names, values


def noted(codec: JsonAttributes, note: LastChange | None, sets: list[str], values: dict[str, Any]) -> list[str]:
    """``sets`` with the change's note (RunRecord.last_change) added, when there is one."""
    if note is None:
        return sets
    values[":note"] = RUN.encode(codec, "last_change", note)
    return [*sets, "last_change = :note"]
