"""StateStore on DynamoDB: one conditional request per call, AWS errors raised as domain errors.

A failed condition is never swallowed: each becomes the outcome the port declares
(infra/ports.py), a lost race or RunGone, raised ``from`` the AWS error. To tell
"gone" from "lost the race" in the same request, refused writes on a run ask for
the item as it was (ReturnValuesOnConditionCheckFailure, no extra capacity used).

Layout (runs table, pk = run id): ``sk = "RUN"`` holds the run (inputs, variables
as a map of JSON strings so one export is one ``SET vars.#n``, sink counter,
failures); ``sk = "T#<task id>"`` holds one task. A task item that does not
exist reads as PENDING, so starting a run writes one item, not one per task.
JSON values (inputs, outputs, errors) are stored as strings: no float/Decimal
conversions and no nesting limits; one larger than the claim-check threshold is
stored in S3 and referenced from the item (infra/aws/claims.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from statemachine.circuit import Circuit
from statemachine.loop_steps import ended_iteration
from statemachine.state import LastChange
from statemachine.versions import WorkflowVersion

from ..ports import (
    LostRace,
    Payloads,
    RequestClosed,
    RunGone,
    RunRecord,
    StoreError,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    TokenUsed,
    Written,
    refusal_record,
)
from . import dynamo_epochs, dynamo_migration, dynamo_rewind
from .claims import DEFAULT_THRESHOLD, JsonAttributes
from .dynamo_calls import Cancelled, Refused, call, found, transact
from .dynamo_circuits import DynamoCircuits
from .dynamo_definitions import DynamoDefinitions
from .dynamo_items import (
    RUN_SK,
    TOKEN,
    noted,
    run_from_item,
    run_item,
    task_from_item,
    task_put,
    task_sk,
    task_update,
    token_from_item,
)

REFUSAL_TRIES = 50  # each failed try means another refusal of the same task was counted meanwhile


class DynamoStore:
    def __init__(self, client, runs_table: str, definitions_table: str, tokens_table: str,
                 payloads: Payloads | None = None, claim_threshold: int = DEFAULT_THRESHOLD):
        self._db = client
        # Without a payload bucket every value stays inline (and DynamoDB's item limit applies).
        self._json = JsonAttributes(payloads, claim_threshold)
        self.runs_table = runs_table
        self.definitions_table = definitions_table
        self.tokens_table = tokens_table
        self._definitions = DynamoDefinitions(client, definitions_table, self._json)
        self._circuits = DynamoCircuits(client, runs_table)

    def _call(self, operation: str, **kwargs):
        return call(self._db, operation, **kwargs)

    def _stored_run(self, run_id: str, refused: Refused) -> RunRecord:
        """The run a refused write found (it asked for ALL_OLD); RunGone if there is none."""
        return run_from_item(self._json, found(run_id, refused.item, refused.error))

    # ------------------------------------------------------------ plans and the registry (dynamo_definitions.py)

    def put_plan(self, plan_hash: str, plan_json: str) -> bool:
        return self._definitions.put_plan(plan_hash, plan_json)

    def get_plan(self, plan_hash: str) -> str | None:
        return self._definitions.get_plan(plan_hash)

    def register_workflow(self, entry: WorkflowVersion) -> Written[WorkflowVersion]:
        return self._definitions.register_workflow(entry)

    def get_workflow(self, workflow_id: str, version: str) -> WorkflowVersion | None:
        return self._definitions.get_workflow(workflow_id, version)

    def workflow_versions(self, workflow_id: str) -> Iterator[WorkflowVersion]:
        return self._definitions.workflow_versions(workflow_id)

    def list_workflows(self) -> list[WorkflowVersion]:
        return self._definitions.list_workflows()

    def deprecate_workflow(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion | None:
        return self._definitions.deprecate_workflow(workflow_id, version, at, reason)

    # ------------------------------------------------------------ runs

    def create_run(self, run: RunRecord) -> Written[RunRecord]:
        item = run_item(self._json, run)
        try:
            self._call("put_item", TableName=self.runs_table, Item=item, ConditionExpression="attribute_not_exists(pk)",
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:  # it exists: the refusal carries the stored run
            return Written(False, self._stored_run(run.run_id, refused))
        return Written(True, run_from_item(self._json, item))

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._call("get_item", TableName=self.runs_table, ConsistentRead=True,
                          Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}}).get("Item")
        return run_from_item(self._json, item) if item else None

    def load(self, run_id: str, task_ids: list[str]) -> tuple[RunRecord | None, dict[str, TaskRecord]]:
        keys = [{"pk": {"S": run_id}, "sk": {"S": RUN_SK}}]
        keys += [{"pk": {"S": run_id}, "sk": {"S": task_sk(t)}} for t in dict.fromkeys(task_ids)]
        items: list[dict] = []
        for start in range(0, len(keys), 100):
            pending: dict | None = {self.runs_table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
            while pending:
                reply = self._call("batch_get_item", RequestItems=pending)
                items += reply["Responses"].get(self.runs_table, [])
                pending = reply.get("UnprocessedKeys") or None
        run, tasks = None, {}
        for item in items:
            sk = item["sk"]["S"]
            if sk == RUN_SK:
                run = run_from_item(self._json, item)
            else:
                tasks[sk[2:]] = task_from_item(self._json, sk[2:], item)
        return run, tasks

    def list_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        tasks: dict[str, TaskRecord] = {}
        kwargs = {"TableName": self.runs_table, "ConsistentRead": True,
                  "KeyConditionExpression": "pk = :r AND begins_with(sk, :t)",
                  "ExpressionAttributeValues": {":r": {"S": run_id}, ":t": {"S": "T#"}}}
        while True:
            reply = self._call("query", **kwargs)
            for item in reply["Items"]:
                task_id = item["sk"]["S"][2:]
                tasks[task_id] = task_from_item(self._json, task_id, item)
            if "LastEvaluatedKey" not in reply:
                return tasks
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def read_span(self, run_id: str, task_ids: list[str]) -> dict[str, TaskRecord]:
        wanted = set(task_ids)
        if not wanted:
            return {}
        # Whole items, no filter: a Query bills every item of its range, whatever it returns.
        kwargs = {"TableName": self.runs_table, "ConsistentRead": True,
                  "KeyConditionExpression": "pk = :r AND sk BETWEEN :first AND :last",
                  "ExpressionAttributeValues": {":r": {"S": run_id}, ":first": {"S": task_sk(min(wanted))},
                                                ":last": {"S": task_sk(max(wanted))}}}
        tasks: dict[str, TaskRecord] = {}
        while True:
            reply = self._call("query", **kwargs)
            for item in reply["Items"]:
                task_id = item["sk"]["S"][2:]
                if task_id in wanted:
                    tasks[task_id] = task_from_item(self._json, task_id, item)
            if "LastEvaluatedKey" not in reply:
                return tasks
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def ended_iterations(self, run_id: str, loop_id: str) -> int:
        # Only the key and the status of each iteration item travel (a page still reads, and bills,
        # up to 1 MB of whole items).
        prefix = f"T#{loop_id}."
        kwargs = {"TableName": self.runs_table, "ConsistentRead": True, "ProjectionExpression": "sk, #st",
                  "KeyConditionExpression": "pk = :r AND begins_with(sk, :p)",
                  "ExpressionAttributeNames": {"#st": "status"},
                  "ExpressionAttributeValues": {":r": {"S": run_id}, ":p": {"S": prefix}}}
        ended = 0
        while True:
            reply = self._call("query", **kwargs)
            ended += sum(1 for item in reply["Items"] if ended_iteration(
                item["sk"]["S"][2:], loop_id, (item.get("status") or {}).get("S")))
            if "LastEvaluatedKey" not in reply:
                return ended
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def _noted(self, note: LastChange | None, sets: list[str], values: dict[str, Any]) -> list[str]:
        return noted(self._json, note, sets, values)

    def finish_run(self, run_id: str, status: str, outputs: Any, error: dict | None, ended_at: str,
                   note: LastChange | None = None, expires: int | None = None) -> bool:
        names = {"#s": "status"}
        values = {":s": {"S": status}, ":running": {"S": "RUNNING"}, ":compensating": {"S": "COMPENSATING"},
                  ":e": {"S": ended_at}}
        sets = self._noted(note, ["#s = :s", "ended_at = :e"], values)
        if expires is not None:  # the table's TTL attribute: the finished run goes after the retention
            names["#ttl"] = "ttl"
            values[":ttl"] = {"N": str(expires)}
            sets.append("#ttl = :ttl")
        if outputs is not None:
            sets.append("outputs = :o")
            values[":o"] = self._json.dump(outputs)
        if error is not None:
            sets.append("#err = :err")
            names["#err"] = "error"
            values[":err"] = self._json.dump(error)
        try:
            self._call("update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                       UpdateExpression="SET " + ", ".join(sets),
                       ConditionExpression="#s IN (:running, :compensating)",
                       ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:
            found(run_id, refused.item, refused.error)
            return False  # ended before (a redelivery), or paused: left as it is
        return True

    def begin_end(self, run_id: str, comps: list[list[str]], status: str,
                  note: LastChange | None = None) -> RunRecord:
        values = {":c": self._json.dump(comps), ":s": {"S": status}, ":running": {"S": "RUNNING"}}
        try:
            reply = self._call(
                "update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                UpdateExpression="SET " + ", ".join(self._noted(note, ["end_comps = :c", "#s = :s"], values)),
                ConditionExpression="attribute_not_exists(end_comps) AND #s = :running",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:  # fixed before, or no longer RUNNING: the run as it is
            return self._stored_run(run_id, refused)
        return run_from_item(self._json, reply["Attributes"])

    def set_run_status(self, run_id: str, status: str, expected: str, note: LastChange | None = None) -> bool:
        values = {":s": {"S": status}, ":expected": {"S": expected}}
        try:
            self._call("update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                       UpdateExpression="SET " + ", ".join(self._noted(note, ["#s = :s"], values)),
                       # A PAUSED run a rewind holds is not resumed (infra/engine/rewind.py).
                       ConditionExpression="#s = :expected" + (" AND attribute_not_exists(rewinding)"
                                                               if expected == "PAUSED" else ""),
                       ExpressionAttributeNames={"#s": "status"},
                       ExpressionAttributeValues=values,
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:
            found(run_id, refused.item, refused.error)
            return False  # in another status: left as it is
        return True

    def halt_run(self, run_id: str, reason_id: str, error: dict, note: LastChange | None = None) -> RunRecord:
        values = {":t": {"BOOL": True}, ":e": self._json.dump(error), ":id": {"SS": [reason_id]}}
        sets = self._noted(note, ["halt = :t", "#err = if_not_exists(#err, :e)"]
                           + (["cancelled = :t"] if reason_id == "$cancel" else []), values)
        try:
            reply = self._call(
                "update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                UpdateExpression="SET " + ", ".join(sets) + " ADD failed_tasks :id",
                ConditionExpression="attribute_exists(pk)", ExpressionAttributeNames={"#err": "error"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW")
        except Refused as refused:  # the only condition is that the run exists
            raise RunGone(run_id) from refused.error
        return run_from_item(self._json, reply["Attributes"])

    def record_sink_done(self, run_id: str, task_id: str, epoch: int | None = None) -> RunRecord:
        fence, values = dynamo_rewind.fence("redrives", epoch)
        try:
            reply = self._call(
                "update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                UpdateExpression="ADD sinks_done :set, sinks_remaining :minus",
                ConditionExpression="attribute_exists(pk) AND NOT contains(sinks_done, :id)" + fence,
                ExpressionAttributeValues={":set": {"SS": [task_id]}, ":minus": {"N": "-1"}, ":id": {"S": task_id},
                                           **values},
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:  # counted before: the run as it is
            return self._stored_run(run_id, refused)
        return run_from_item(self._json, reply["Attributes"])

    def record_failure(self, run_id: str, task_id: str, error: dict, epoch: int | None = None) -> None:
        fence, values = dynamo_rewind.fence("redrives", epoch)
        try:
            self._call("update_item", TableName=self.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                       UpdateExpression="ADD failed_tasks :t SET #err = if_not_exists(#err, :e)",
                       ConditionExpression="attribute_exists(pk)" + fence,
                       ExpressionAttributeNames={"#err": "error"},
                       ExpressionAttributeValues={":t": {"SS": [task_id]}, ":e": self._json.dump(error), **values,
                                                  **({":id": {"S": task_id}} if values else {})},
                       ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:  # no run item (the condition keeps an update from making half of one), or fenced
            found(run_id, refused.item, refused.error)

    # ------------------------------------------------------------ tasks

    def change_task(self, run_id: str, task_id: str, change: TaskChange, exports=None,
                    consume: TokenConsume | None = None) -> TaskRecord:
        key = {"pk": {"S": run_id}, "sk": {"S": task_sk(task_id)}}
        if (change.absent or change.likely_absent) and not exports and consume is None:
            put = task_put(self._json, run_id, task_id, change if change.absent else replace(change, absent=True))
            try:
                self._call("put_item", TableName=self.runs_table, ReturnValuesOnConditionCheckFailure="ALL_OLD", **put)
            except Refused as refused:
                if change.absent:
                    raise LostRace(task_from_item(self._json, task_id, refused.item)) from refused.error
                # Only presumed absent, and it has an item now (or the change's own conditions fail):
                # the update below decides, as it would have without the hint. A second request, in a race.
            else:
                return task_from_item(self._json, task_id, put["Item"])
        update = task_update(self._json, change)
        if not exports and consume is None:
            try:
                reply = self._call("update_item", TableName=self.runs_table, Key=key, ReturnValues="ALL_NEW",
                                   ReturnValuesOnConditionCheckFailure="ALL_OLD", **update)
            except Refused as refused:
                raise LostRace(task_from_item(self._json, task_id, refused.item)) from refused.error
            return task_from_item(self._json, task_id, reply["Attributes"])
        items = [("task", {"Update": {"TableName": self.runs_table, "Key": key,
                                      "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **update}})]
        if consume is not None:
            items.append(("token", {"Update": {
                "TableName": self.tokens_table, "Key": {"pk": {"S": consume.token_hash}},
                "UpdateExpression": "SET used_by = :rid",
                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(used_by) "
                                       "AND (attribute_not_exists(expires_at) OR expires_at > :now)",
                "ExpressionAttributeValues": {":rid": {"S": consume.request_id},
                                              ":now": {"N": str(consume.now_epoch)}}}}))
            if consume.vote_on is not None:  # the approval must still wait; its vote count goes up
                items.append(("vote", {"Update": {
                    "TableName": self.runs_table,
                    "Key": {"pk": {"S": run_id}, "sk": {"S": task_sk(consume.vote_on[0])}},
                    "UpdateExpression": "ADD votes :one",
                    "ConditionExpression": "#st = :waiting AND #att = :att",
                    "ExpressionAttributeNames": {"#st": "status", "#att": "attempt"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":waiting": {"S": "WAITING"},
                                                  ":att": {"N": str(consume.vote_on[1])}}}}))
        if exports:
            names = {f"#v{i}": name for i, name in enumerate(exports)}
            values = {f":v{i}": self._json.dump(value) for i, value in enumerate(exports.values())}
            items.append(("run", {"Update": {
                "TableName": self.runs_table, "Key": {"pk": {"S": run_id}, "sk": {"S": RUN_SK}},
                "UpdateExpression": "SET " + ", ".join(f"vars.#v{i} = :v{i}" for i in range(len(exports))),
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}))
        try:
            transact(self._db, items)
        except Cancelled as cancelled:
            # Several conditions may fail at once: the port's order says which one is reported.
            failed, error = cancelled.failed, cancelled.error
            if "task" in failed:
                raise LostRace(task_from_item(self._json, task_id, failed["task"])) from error
            if "run" in failed:
                raise RunGone(run_id) from error
            if "token" in failed and consume is not None:
                raise TokenUsed(consume.token_hash) from error
            if "vote" in failed and consume is not None and consume.vote_on is not None:
                raise RequestClosed(consume.vote_on[0]) from error
            raise StoreError(f"DynamoDB transaction failed on {sorted(failed)}") from error
        _, tasks = self.load(run_id, [task_id])
        return tasks[task_id]

    def resolve_edge(self, run_id: str, task_id: str, dep_id: str, outcome: str,
                     epoch: int | None = None) -> Written[TaskRecord]:
        counter = {"ok": "deps_ok", "failed": "deps_failed"}.get(outcome, "deps_skipped")
        expression = f"ADD resolved :dep, {counter} :one"
        fence, fence_values = dynamo_rewind.fence("redrive", epoch)
        values = {":dep": {"SS": [dep_id]}, ":one": {"N": "1"}, ":id": {"S": dep_id}, **fence_values}
        if outcome == "force_skip":
            expression += " SET forced_skip = :true"
            values[":true"] = {"BOOL": True}
        try:
            reply = self._call(
                "update_item", TableName=self.runs_table,
                Key={"pk": {"S": run_id}, "sk": {"S": task_sk(task_id)}},
                UpdateExpression=expression, ConditionExpression="NOT contains(resolved, :id)" + fence,
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:  # counted before: the task as it is
            return Written(False, task_from_item(self._json, task_id, refused.item))
        return Written(True, task_from_item(self._json, task_id, reply["Attributes"]))

    def record_refusal(self, run_id: str, record_id: str, refusal: dict[str, Any], keep: int) -> TaskRecord:
        # DynamoDB cannot trim a list in the update that appends to it, so: read the record, then
        # write the next one on the condition that its count is still the one read (one atomic
        # conditional write); a concurrent refusal in between makes it read again.
        key = {"pk": {"S": run_id}, "sk": {"S": task_sk(record_id)}}
        for _ in range(REFUSAL_TRIES):
            item = self._call("get_item", TableName=self.runs_table, Key=key, ConsistentRead=True).get("Item")
            current = task_from_item(self._json, record_id, item)
            record = refusal_record(current, refusal, keep)
            seen = "attempt" in (item or {})
            try:
                self._call("update_item", TableName=self.runs_table, Key=key,
                           UpdateExpression="SET #st = :done, #n = :n, #out = :out",
                           ConditionExpression="#n = :seen" if seen else "attribute_not_exists(#n)",
                           ExpressionAttributeNames={"#st": "status", "#n": "attempt", "#out": "output"},
                           ExpressionAttributeValues={
                               ":done": {"S": "COMPLETED"}, ":n": {"N": str(record.attempt)},
                               ":out": self._json.dump(record.output),
                               **({":seen": item["attempt"]} if seen else {})})
                return record
            except Refused:
                continue  # another refusal was counted first: count this one on top of it
        raise StoreError(f"refusal record {run_id}/{record_id}: still contended after {REFUSAL_TRIES} tries")

    # ------------------------------------------------------------ circuit breakers (dynamo_circuits.py)

    def get_circuit(self, name: str) -> Circuit | None:
        return self._circuits.get_circuit(name)

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        return self._circuits.put_circuit(circuit)

    # ------------------------------------------------------------ tokens

    def put_token(self, token: TokenRecord) -> bool:
        try:
            self._call("put_item", TableName=self.tokens_table, Item=TOKEN.item(self._json, token),
                       ConditionExpression="attribute_not_exists(pk)")
        except Refused:
            return False  # already there, maybe used: never reset it
        return True

    def get_token(self, token_hash: str) -> TokenRecord | None:
        item = self._call("get_item", TableName=self.tokens_table, ConsistentRead=True,
                          Key={"pk": {"S": token_hash}}).get("Item")
        return token_from_item(self._json, item) if item else None

    def unused_tokens(self, kind: str) -> list[TokenRecord]:
        # An operator's listing (`loopline approvals`): a filtered scan of the links table,
        # which TTL keeps to the links still open; no transition ever calls it.
        found, kwargs = [], {"TableName": self.tokens_table,
                             "FilterExpression": "kind = :k AND attribute_not_exists(used_by)",
                             "ExpressionAttributeValues": {":k": {"S": kind}}}
        while True:
            reply = self._call("scan", **kwargs)
            found += [token_from_item(self._json, item) for item in reply["Items"]]
            if "LastEvaluatedKey" not in reply:
                return found
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    # ------------------------------------------------------------ redrive and rewind (dynamo_epochs.py)

    def reset_task(self, run_id: str, task_id: str, epoch: int, keep: dict[str, Any] | None = None,
                   rewinding: bool = False) -> bool:
        return dynamo_epochs.reset_task(self._db, self._json, self.runs_table, run_id, task_id, epoch, keep, rewinding)

    def reopen_run(self, run_id: str, epoch: int, sinks_done: list[str], sinks_remaining: int,
                   now: str, note: LastChange | None = None, rewinding: bool = False) -> Written[RunRecord]:
        return dynamo_epochs.reopen_run(self._db, self._json, self.runs_table, run_id, epoch, sinks_done,
                                        sinks_remaining, now, note, rewinding)

    def begin_rewind(self, run_id: str, epoch: int, task_id: str, comps: list[list[str]] | None = None,
                     note: LastChange | None = None, moving: bool = False) -> Written[RunRecord]:
        return dynamo_epochs.begin_rewind(self._db, self._json, self.runs_table, run_id, epoch, task_id, comps,
                                          note, moving)

    def reopen_moving(self, run_id: str, epoch: int, gone: list[str], sinks: int, fenced: list[str],
                      now: str, note: LastChange | None = None) -> Written[RunRecord]:
        return dynamo_rewind.reopen_moving(self._db, self._json, self.runs_table, run_id, epoch, gone, sinks, fenced,
                                           now, note)

    # ------------------------------------------------------------ migration (dynamo_migration.py)

    def migrate_task(self, run_id: str, record: TaskRecord, epoch: int, plan_hash: str,
                     expect: TaskRecord | None) -> bool:
        return dynamo_migration.migrate_task(self._db, self._json, self.runs_table, run_id, record, epoch,
                                             plan_hash, expect)

    def pause_to_migrate(self, run_id: str, epoch: int, plan_hash: str,
                         note: LastChange | None = None) -> Written[RunRecord]:
        return dynamo_migration.pause_to_migrate(self._db, self._json, self.runs_table, run_id, epoch, plan_hash,
                                                 note)

    def switch_plan(self, run_id: str, epoch: int, source: str, target: str, inputs: dict[str, Any],
                    variables: dict[str, Any], sinks_done: list[str], sinks_remaining: int,
                    note: LastChange | None = None) -> Written[RunRecord]:
        return dynamo_migration.switch_plan(self._db, self._json, self.runs_table, run_id, epoch, source, target,
                                            inputs, variables, sinks_done, sinks_remaining, note)

