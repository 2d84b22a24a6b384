"""DynamoDB items <-> the store's records: how DynamoStore lays a run, a task and a link out.

JSON values (outputs, errors, approval requests, ...) go through ``JsonAttributes``
(infra/aws/claims.py), so one over the claim-check threshold is an S3 claim in the item.
"""

from __future__ import annotations

from typing import Any

from ..ports import RunRecord, TaskChange, TaskRecord, TokenRecord
from .claims import JsonAttributes

RUN_SK = "RUN"
JSON_FIELDS = {"output", "error", "approval", "role_ctx", "catch", "loop_state", "child_inputs"}
INT_FIELDS = {"attempt", "ctx_seed", "deps_ok", "deps_failed", "deps_skipped", "redrive", "votes"}
BOOL_FIELDS = {"forced_skip", "parked"}


def task_sk(task_id: str) -> str:
    return f"T#{task_id}"


def encode(codec: JsonAttributes, name: str, value: Any) -> dict:
    if name in JSON_FIELDS:
        return codec.dump(value)
    if name in INT_FIELDS:
        return {"N": str(int(value))}
    if name in BOOL_FIELDS:
        return {"BOOL": bool(value)}
    return {"S": str(value)}


def task_from_item(codec: JsonAttributes, task_id: str, item: dict | None) -> TaskRecord:
    if not item:
        return TaskRecord(task_id)
    fields: dict[str, Any] = {}
    for name, value in item.items():
        if name in ("pk", "sk"):
            continue
        if name == "resolved":
            fields[name] = frozenset(value["SS"])
        elif name in JSON_FIELDS:
            fields[name] = codec.load(value)
        elif name in INT_FIELDS:
            fields[name] = int(value["N"])
        elif name in BOOL_FIELDS:
            fields[name] = value["BOOL"]
        elif name == "status" or name in TaskRecord.__dataclass_fields__:
            fields[name] = value["S"]
    return TaskRecord(task_id, **fields)


def run_from_item(codec: JsonAttributes, item: dict | None) -> RunRecord | None:
    if not item:
        return None
    return RunRecord(
        run_id=item["pk"]["S"],
        plan_hash=item["plan_hash"]["S"],
        workflow_id=item["workflow_id"]["S"],
        status=item["status"]["S"],
        inputs=codec.load(item["inputs"]),
        variables={k: codec.load(v) for k, v in item.get("vars", {}).get("M", {}).items()},
        outputs=codec.load(item["outputs"]) if "outputs" in item else None,
        error=codec.load(item["error"]) if "error" in item else None,
        created_at=item.get("created_at", {}).get("S", ""),
        ended_at=item.get("ended_at", {}).get("S"),
        sinks_remaining=int(item.get("sinks_remaining", {}).get("N", "0")),
        failed_tasks=frozenset(item.get("failed_tasks", {}).get("SS", [])),
        end_comps=codec.load(item["end_comps"]) if "end_comps" in item else None,
        parent=codec.load(item["parent"]) if "parent" in item else None,
        halt=item.get("halt", {}).get("BOOL", False),
        cancelled=item.get("cancelled", {}).get("BOOL", False),
        redrives=int(item.get("redrives", {}).get("N", "0")),
        redriven_at=item.get("redriven_at", {}).get("S"),
    )


def token_from_item(item: dict) -> TokenRecord:
    return TokenRecord(
        token_hash=item["pk"]["S"], run_id=item["run_id"]["S"], task_id=item["task_id"]["S"],
        attempt=int(item["attempt"]["N"]), kind=item["kind"]["S"], plan_hash=item["plan_hash"]["S"],
        expires_at=int(item["expires_at"]["N"]) if "expires_at" in item else None,
        used_by=item.get("used_by", {}).get("S"), approver=item.get("approver", {}).get("S"),
        epoch=int(item.get("epoch", {}).get("N", "0")))


def task_update(codec: JsonAttributes, change: TaskChange) -> dict[str, Any]:
    names = {"#st": "status"}
    values: dict[str, Any] = {":status": {"S": change.status}}
    sets, removes = ["#st = :status"], []
    for i, (name, value) in enumerate(change.set.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = encode(codec, name, value)
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
    if change.lease_expired_before is not None:
        names["#lease"] = "lease_until"
        values[":lease"] = {"S": change.lease_expired_before}
        condition += " AND (attribute_not_exists(#lease) OR #lease < :lease)"
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"UpdateExpression": expression, "ConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
