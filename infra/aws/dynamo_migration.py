"""A migration's two conditional writes on DynamoDB (StateStore.migrate_task and switch_plan; the rules are
loopline/store_rules.py's may_migrate_task and switched, which the contract test holds every store to)."""

from __future__ import annotations

from typing import Any

from statemachine.state import LastChange

from ..ports import RunRecord, TaskRecord, Written
from .claims import JsonAttributes
from .dynamo_calls import Cancelled, Refused, call, found, transact
from .dynamo_items import RUN, RUN_SK, TASK, run_from_item, task_sk


def _on_plan(epoch: int, plan_hash: str, status: str = "PAUSED") -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition "``status`` on ``plan_hash`` with ``epoch - 1`` redrives" on the run item."""
    count = "(attribute_not_exists(redrives) OR redrives = :prev)" if epoch == 1 else "redrives = :prev"
    # Not while a rewind holds the run (infra/engine/rewind.py): it takes the same epoch.
    return (f"#s = :was AND plan_hash = :from AND {count} AND attribute_not_exists(rewinding)", {"#s": "status"},
            {":was": {"S": status}, ":from": {"S": plan_hash}, ":prev": {"N": str(epoch - 1)}})


def run_updated(db: Any, codec: JsonAttributes, table: str, run_id: str, condition: str, sets: list[str],
             removes: list[str], names: dict[str, str], values: dict[str, Any]) -> Written[RunRecord]:
    """One conditional update of the run item: (applied, the run as stored)."""
    try:
        reply = call(db, "update_item", TableName=table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                     UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
                     ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                     ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except Refused as refused:  # done before (a redelivery), or not to be done: the run as it is
        return Written(False, run_from_item(codec, found(run_id, refused.item, refused.error)))
    return Written(True, run_from_item(codec, reply["Attributes"]))


def pause_to_migrate(db: Any, codec: JsonAttributes, table: str, run_id: str, epoch: int, plan_hash: str,
                     note: LastChange | None) -> Written[RunRecord]:
    condition, names, values = _on_plan(epoch, plan_hash, "RUNNING")
    values[":paused"] = {"S": "PAUSED"}
    sets = ["#s = :paused"]
    if note is not None:
        values[":note"] = RUN.encode(codec, "last_change", note)
        sets.append("last_change = :note")
    return run_updated(db, codec, table, run_id, condition, sets, [], names, values)


def _as_found(expect: TaskRecord | None, epoch: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition "the item is as the migration found it, and not stamped ``epoch`` yet"."""
    if expect is None:
        return "attribute_not_exists(sk)", {}, {}
    parts = ["attribute_exists(sk)", "(attribute_not_exists(redrive) OR redrive < :n)"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {":n": {"N": str(epoch)}}
    for i, (name, value, default) in enumerate((("status", expect.status, "PENDING"), ("attempt", expect.attempt, 0),
                                                ("votes", expect.votes, 0))):
        names[f"#f{i}"] = name
        values[f":f{i}"] = {"S": value} if isinstance(value, str) else {"N": str(value)}
        # A field at its default may have no attribute (an item written by an update of other fields).
        parts.append(f"(#f{i} = :f{i} OR attribute_not_exists(#f{i}))" if value == default else f"#f{i} = :f{i}")
    return " AND ".join(parts), names, values


def set_sinks(sinks_done: list[str], sets: list[str], removes: list[str], values: dict[str, Any]) -> None:
    """The update of a run's counted sinks to ``sinks_done`` (a redrive's or a migration's)."""
    if sinks_done:
        sets.append("sinks_done = :done")
        values[":done"] = {"SS": sorted(set(sinks_done))}
    else:
        removes.append("sinks_done")  # a string set cannot be empty


def migrate_task(db: Any, codec: JsonAttributes, table: str, run_id: str, record: TaskRecord, epoch: int,
                 plan_hash: str, expect: TaskRecord | None) -> bool:
    item = {"pk": {"S": run_id}, "sk": {"S": task_sk(record.task_id)}, **TASK.item(codec, record)}
    task_condition, task_names, task_values = _as_found(expect, epoch)
    run_condition, names, values = _on_plan(epoch, plan_hash)
    put: dict[str, Any] = {"TableName": table, "Item": item, "ConditionExpression": task_condition}
    if task_names:
        put.update(ExpressionAttributeNames=task_names, ExpressionAttributeValues=task_values)
    try:
        # One transaction: no task of the run is written once it has switched plans (a redelivery would undo
        # the new plan's progress).
        transact(db, [("task", {"Put": put}), ("run", {"ConditionCheck": {
            "TableName": table, "Key": {"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
            "ConditionExpression": run_condition, "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}})])
    except Cancelled as cancelled:
        if "run" in cancelled.failed:
            found(run_id, cancelled.failed["run"], cancelled.error)  # RunGone if there is no run
        return False
    return True


def switch_plan(db: Any, codec: JsonAttributes, table: str, run_id: str, epoch: int, source: str, target: str,
                inputs: dict[str, Any], variables: dict[str, Any], sinks_done: list[str], sinks_remaining: int,
                note: LastChange | None) -> Written[RunRecord]:
    condition, names, values = _on_plan(epoch, source)
    values.update({":running": {"S": "RUNNING"}, ":to": {"S": target}, ":n": {"N": str(epoch)},
                   ":left": {"N": str(sinks_remaining)}, ":vars": RUN.encode(codec, "variables", variables),
                   ":inputs": RUN.encode(codec, "inputs", inputs)})
    sets = ["#s = :running", "plan_hash = :to", "redrives = :n", "sinks_remaining = :left", "vars = :vars",
            "inputs = :inputs"]
    removes: list[str] = []
    if note is not None:
        values[":note"] = RUN.encode(codec, "last_change", note)
        sets.append("last_change = :note")
    set_sinks(sinks_done, sets, removes, values)
    return run_updated(db, codec, table, run_id, condition, sets, removes, names, values)
