"""A moving run's rewind on DynamoDB (StateStore.reopen_moving, and the fence that resolve_edge, record_sink_done
and record_failure add to their conditions; the rules are loopline/store_rules.py's reopened_moving and
fenced_off, which the contract test holds every store to)."""

from __future__ import annotations

from typing import Any

from statemachine.state import LastChange

from ..ports import RunGone, RunRecord, Written
from .claims import JsonAttributes
from .dynamo_calls import Refused, call
from .dynamo_items import RUN, RUN_SK, run_from_item
from .dynamo_migration import set_sinks


def fence(stamp: str, epoch: int | None) -> tuple[str, dict[str, Any]]:
    """The condition "not a fenced result from before the rewind" (``:id`` is the task, ``stamp`` the attribute
    its ``epoch`` is compared with: the item's, or the run's), and its values; nothing when ``epoch`` is None."""
    if epoch is None:
        return "", {}
    return (f" AND (NOT contains(fenced, :id) OR attribute_not_exists({stamp}) OR {stamp} <= :fence_ep)",
            {":fence_ep": {"N": str(epoch)}})


def reopen_moving(db: Any, codec: JsonAttributes, table: str, run_id: str, epoch: int, gone: list[str],
                  sinks: int, fenced: list[str], now: str, note: LastChange | None) -> Written[RunRecord]:
    """Read the run, then write it on condition nothing was counted meanwhile (a kept sink or a failure changes
    the sink counter or the failures' number): again from the read if something was."""
    key = {"pk": {"S": run_id}, "sk": {"S": RUN_SK}}
    while True:
        item = call(db, "get_item", TableName=table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            raise RunGone(run_id)
        run = run_from_item(codec, item)
        if run.status != "PAUSED" or run.rewinding != epoch:
            return Written(False, run)
        done = set(item.get("sinks_done", {}).get("SS", [])) - set(gone)
        failed = run.failed_tasks - set(gone)
        values: dict[str, Any] = {":rw": {"N": str(epoch)}, ":paused": {"S": "PAUSED"}, ":running": {"S": "RUNNING"},
                                  ":n": {"N": str(epoch)}, ":now": {"S": now}, ":left": {"N": str(sinks - len(done))},
                                  ":seen": {"N": str(run.sinks_remaining)}}
        sets = ["#s = :running", "redrives = :n", "redriven_at = :now", "sinks_remaining = :left"]
        removes = ["rewinding", "rewind_to", "end_comps"]  # (a rewind's compensations, if it ran them first)
        if note is not None:
            values[":note"] = RUN.encode(codec, "last_change", note)
            sets.append("last_change = :note")
        set_sinks(sorted(done), sets, removes, values)
        for name, members in (("failed_tasks", failed), ("fenced", frozenset(fenced))):
            if members:  # a string set cannot be empty
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"SS": sorted(members)}
            else:
                removes.append(name)
        names = {"#s": "status"}
        if not failed:
            names["#err"] = "error"
            removes.append("#err")
        seen = "sinks_remaining = :seen AND "
        if run.failed_tasks:
            seen += "size(failed_tasks) = :was_failed"
            values[":was_failed"] = {"N": str(len(run.failed_tasks))}
        else:
            seen += "attribute_not_exists(failed_tasks)"
        try:
            reply = call(db, "update_item", TableName=table, Key=key,
                         UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                         ConditionExpression=f"#s = :paused AND rewinding = :rw AND {seen}",
                         ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except Refused:
            continue  # something was counted meanwhile, or the rewind ended: read again
        return Written(True, run_from_item(codec, reply["Attributes"]))
