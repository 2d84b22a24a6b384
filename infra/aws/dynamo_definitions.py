"""The definitions table on DynamoDB: compiled plans (content-addressed) and the workflow registry
(one item per version), for DynamoStore (the StateStore port's plan and registry methods)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from statemachine.versions import WorkflowVersion, version_key

from ..ports import StoreError, Written
from .claims import JsonAttributes
from .dynamo_calls import Refused, call


class DynamoDefinitions:
    def __init__(self, client: Any, table: str, codec: JsonAttributes):
        self._db = client
        self.table = table
        self._json = codec

    def _call(self, operation: str, **kwargs):
        return call(self._db, operation, **kwargs)

    def put_plan(self, plan_hash: str, plan_json: str) -> bool:
        # A large plan (a long chain, a long description) is a claim on S3, as any large value.
        try:
            self._call("put_item", TableName=self.table, Item={
                "pk": {"S": f"PLAN#{plan_hash}"}, "sk": {"S": "PLAN"}, "body": self._json.dump_text(plan_json)},
                ConditionExpression="attribute_not_exists(pk)")
        except Refused:
            return False  # content-addressed: the plan stored under this hash is this plan
        return True

    def get_plan(self, plan_hash: str) -> str | None:
        item = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key={"pk": {"S": f"PLAN#{plan_hash}"}, "sk": {"S": "PLAN"}}).get("Item")
        return self._json.load_text(item["body"]) if item else None

    # ------------------------------------------------------------ registry
    # One item per version: pk "WF#<id>", sk its semver sort key (so a query reads versions in order).
    # What a registration writes is in "extra" (JSON), written once; a deprecation sets its own two
    # attributes, if not set already, so the first one stands.

    def _version_key(self, workflow_id: str, version: str) -> dict[str, Any]:
        return {"pk": {"S": f"WF#{workflow_id}"}, "sk": {"S": version_key(version)}}

    def register_workflow(self, entry: WorkflowVersion) -> Written[WorkflowVersion]:
        # Conditional: of two registrations of one id@version, exactly one writes; the other is told
        # what is stored (ALL_OLD, no extra read).
        try:
            self._call("put_item", TableName=self.table, Item={
                **self._version_key(entry.workflow_id, entry.version), "version": {"S": entry.version},
                "plan_hash": {"S": entry.plan_hash}, "extra": {"S": json.dumps(entry.extra())}},
                ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except Refused as refused:
            if refused.item is None:  # refused, yet nothing there: not an outcome this write can have
                raise StoreError(f"registering {entry.ref} was refused with no version stored") from refused.error
            return Written(False, _workflow_version(refused.item))
        return Written(True, entry)

    def get_workflow(self, workflow_id: str, version: str) -> WorkflowVersion | None:
        item = self._call("get_item", TableName=self.table, ConsistentRead=True,
                          Key=self._version_key(workflow_id, version)).get("Item")
        return _workflow_version(item) if item else None

    def workflow_versions(self, workflow_id: str) -> Iterator[WorkflowVersion]:
        # A page at a time: `id` means the newest version not deprecated, nearly always the first read.
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ScanIndexForward": False, "Limit": 10,
            "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": f"WF#{workflow_id}"}}}
        while True:
            reply = self._call("query", **kwargs)
            yield from (_workflow_version(item) for item in reply["Items"])
            if "LastEvaluatedKey" not in reply:
                return
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def list_workflows(self) -> list[WorkflowVersion]:
        # The registry is small and listing it is an operator's request, not a transition.
        items, kwargs = [], {"TableName": self.table, "FilterExpression": "begins_with(pk, :w)",
                             "ExpressionAttributeValues": {":w": {"S": "WF#"}}}
        while True:
            reply = self._call("scan", **kwargs)
            items += reply["Items"]
            if "LastEvaluatedKey" not in reply:
                break
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
        return sorted((_workflow_version(i) for i in items), key=lambda v: (v.workflow_id, version_key(v.version)))

    def deprecate_workflow(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion | None:
        try:
            reply = self._call(
                "update_item", TableName=self.table, Key=self._version_key(workflow_id, version),
                UpdateExpression="SET deprecated_at = if_not_exists(deprecated_at, :at), "
                                 "deprecation = if_not_exists(deprecation, :why)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": at}, ":why": {"S": reason}}, ReturnValues="ALL_NEW")
        except Refused:
            return None  # no such version
        return _workflow_version(reply["Attributes"])


def _workflow_version(item: dict[str, Any]) -> WorkflowVersion:
    extra = json.loads(item["extra"]["S"]) if "extra" in item else {}  # none: registered before versions
    for name in ("deprecated_at", "deprecation"):
        if name in item:
            extra[name] = item[name]["S"]
    return WorkflowVersion.from_stored(item["pk"]["S"][3:], item["version"]["S"], item["plan_hash"]["S"], extra)

