"""A run's epochs on DynamoDB: a redrive or a rewind resets the tasks that run again, each at the new
epoch, then reopens the run (a rewind first marks it: begin_rewind). Each write is conditional on the
run being where the step expects it, so a redelivered step changes nothing (infra/engine/redrive.py,
infra/engine/rewind.py, and the rules in docs/durability.md)."""

from __future__ import annotations

from typing import Any

from statemachine.state import LastChange

from ..ports import RunRecord, Written
from .claims import JsonAttributes
from .dynamo_calls import Cancelled, found, transact
from .dynamo_items import RUN, RUN_SK, TASK, noted, task_sk
from .dynamo_migration import run_updated, set_sinks


def _failed_at(epoch: int) -> tuple[str, dict, dict]:
    """The condition "FAILED with ``epoch - 1`` redrives, no rewind under way" on the run item (never
    redriven: no attribute)."""
    count = "(attribute_not_exists(redrives) OR redrives = :prev)" if epoch == 1 else "redrives = :prev"
    return (f"#s = :failed AND {count} AND attribute_not_exists(rewinding)", {"#s": "status"},
            {":failed": {"S": "FAILED"}, ":prev": {"N": str(epoch - 1)}})


def _rewinding_at(epoch: int) -> tuple[str, dict, dict]:
    """The condition "rewind ``epoch`` under way" on the run item (infra/engine/rewind.py)."""
    return "rewinding = :rw", {}, {":rw": {"N": str(epoch)}}


def reset_task(db: Any, codec: JsonAttributes, table: str, run_id: str, task_id: str, epoch: int,
               keep: dict[str, Any] | None, rewinding: bool) -> bool:
    """A task's item PENDING at ``epoch`` (StateStore.reset_task)."""
    # A put, not an update: it drops every attribute the item had, whatever wrote it.
    item = {"pk": {"S": run_id}, "sk": {"S": task_sk(task_id)}, "status": {"S": "PENDING"},
            "redrive": {"N": str(epoch)},
            **{name: TASK.encode(codec, name, value) for name, value in (keep or {}).items()}}
    run_condition, names, values = _rewinding_at(epoch) if rewinding else _failed_at(epoch)
    # A redrive resets an item once per epoch; a rewind whenever its epoch is under way (the ended
    # run's items move no other way, and its reset overwrites one a redrive of the same epoch made).
    put: dict[str, Any] = {"TableName": table, "Item": item}
    if not rewinding:
        put.update(ConditionExpression="attribute_not_exists(redrive) OR redrive < :n",
                   ExpressionAttributeValues={":n": {"N": str(epoch)}})
    check: dict[str, Any] = {
        "TableName": table, "Key": {"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
        "ConditionExpression": run_condition, "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if names:
        check["ExpressionAttributeNames"] = names
    try:
        # One transaction: the run must still be FAILED at ``epoch - 1`` (or rewinding at ``epoch``), so no
        # reset can land after the run reopened (when a redelivered message would undo the new epoch's progress).
        transact(db, [("task", {"Put": {**put}}), ("run", {"ConditionCheck": {**check}})])
    except Cancelled as cancelled:
        if "run" in cancelled.failed:
            found(run_id, cancelled.failed["run"], cancelled.error)
        return False  # stamped already (a redelivery), or the run was reopened or is not FAILED
    return True


def reopen_run(db: Any, codec: JsonAttributes, table: str, run_id: str, epoch: int, sinks_done: list[str],
               sinks_remaining: int, now: str, note: LastChange | None, rewinding: bool) -> Written[RunRecord]:
    """The run RUNNING again at ``epoch`` (StateStore.reopen_run)."""
    if rewinding:
        condition, names, values = _rewinding_at(epoch)
        names["#s"] = "status"
    else:
        condition, names, values = _failed_at(epoch)
        values[":nocomps"] = {"S": "[]"}  # begin_end's empty list
        condition += " AND (attribute_not_exists(end_comps) OR end_comps = :nocomps)"
    names["#err"] = "error"
    values.update({":running": {"S": "RUNNING"}, ":n": {"N": str(epoch)}, ":now": {"S": now},
                   ":left": {"N": str(sinks_remaining)}})
    sets = noted(codec, note, ["#s = :running", "redrives = :n", "redriven_at = :now", "sinks_remaining = :left"],
                       values)
    names["#ttl"] = "ttl"  # running again: no longer due to expire
    removes = ["#err", "ended_at", "outputs", "end_comps", "halt", "cancelled", "failed_tasks", "#ttl",
               "rewinding", "rewind_to"]
    set_sinks(sinks_done, sets, removes, values)
    # Refused: reopened before (a redelivery), or not to be reopened; either way the run as it is.
    return run_updated(db, codec, table, run_id, condition, sets, removes, names, values)


def begin_rewind(db: Any, codec: JsonAttributes, table: str, run_id: str, epoch: int, task_id: str,
                 comps: list[list[str]] | None, note: LastChange | None, moving: bool) -> Written[RunRecord]:
    """The rewind ``epoch`` marked on the run (StateStore.begin_rewind)."""
    count = "(attribute_not_exists(redrives) OR redrives = :prev)" if epoch == 1 else "redrives = :prev"
    values: dict[str, Any] = {":n": {"N": str(epoch)}, ":to": {"S": task_id}, ":prev": {"N": str(epoch - 1)}}
    sets = ["rewinding = :n", "rewind_to = :to"]
    if moving:  # RUNNING or PAUSED, not stopping, no end steps: PAUSED while the rewind holds it
        values.update({":running": {"S": "RUNNING"}, ":paused": {"S": "PAUSED"}, ":t": {"BOOL": True}})
        sets = noted(codec, note, [*sets, "#s = :paused"], values)
        status = ("#s IN (:running, :paused) AND (attribute_not_exists(halt) OR halt <> :t) "
                  "AND attribute_not_exists(end_comps)")
    else:
        values.update({":completed": {"S": "COMPLETED"}, ":failed": {"S": "FAILED"},
                       ":cancelled": {"S": "CANCELLED"}})
        status = "#s IN (:completed, :failed, :cancelled)"
    if comps and moving:  # its compensations first, as the run's end steps, while it stays PAUSED
        values[":comps"] = RUN.encode(codec, "end_comps", comps)
        sets = [*sets, "end_comps = :comps"]
    elif comps:  # its compensations first, as the run's end steps
        values.update({":comping": {"S": "COMPENSATING"}, ":comps": RUN.encode(codec, "end_comps", comps)})
        sets = noted(codec, note, [*sets, "#s = :comping", "end_comps = :comps"], values)
    # Refused: begun before (a redelivery), or not a run to rewind at the epoch before.
    return run_updated(db, codec, table, run_id, f"{status} AND {count} AND attribute_not_exists(rewinding)", sets,
                       [], {"#s": "status"}, values)
