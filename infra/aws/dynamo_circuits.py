"""Circuit breakers on DynamoDB (StateStore.get_circuit / put_circuit, statemachine/circuit.py).

One item per breaker in the runs table, beside the runs: ``pk = "circuit#<name>"``, ``sk = "CIRCUIT"``
(no run id has that sort key), with the record as JSON and a ``version`` number. A write is one PutItem
conditional on the version read, so concurrent workers never lose each other's counts; a refused one
returns the item that won (ReturnValuesOnConditionCheckFailure, no read of its own). The item has no
``status`` or ``created_at``, so the run listing's indexes never see it, and no ``last_change``, so the
history consumer reads nothing from its stream records. The worker's role already has GetItem and PutItem
on the runs table: no new action.
"""

from __future__ import annotations

from statemachine.circuit import Circuit

from ..ports import StoreError, Written
from .dynamo_calls import Refused, call

SORT_KEY = "CIRCUIT"


def circuit_key(name: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"circuit#{name}"}, "sk": {"S": SORT_KEY}}


class DynamoCircuits:
    def __init__(self, client, runs_table: str):
        self._db = client
        self.table = runs_table

    def get_circuit(self, name: str) -> Circuit | None:
        item = call(self._db, "get_item", TableName=self.table, Key=circuit_key(name), ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def put_circuit(self, circuit: Circuit) -> Written[Circuit]:
        version = circuit.version + 1
        item = {**circuit_key(circuit.name), "record": {"S": circuit.to_json()}, "version": {"N": str(version)}}
        condition = {"ConditionExpression": "#v = :seen", "ExpressionAttributeNames": {"#v": "version"},
                     "ExpressionAttributeValues": {":seen": {"N": str(circuit.version)}}} if circuit.version \
            else {"ConditionExpression": "attribute_not_exists(pk)"}
        try:
            call(self._db, "put_item", TableName=self.table, Item=item,
                 ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)
        except Refused as refused:
            if not refused.item:  # the version read is stored nowhere: there is no item to have won
                raise StoreError(f"circuit {circuit.name!r}: version {circuit.version} is not stored") from refused
            return Written(False, _from_item(refused.item))
        return Written(True, Circuit.from_json(circuit.to_json(), version))


def _from_item(item: dict) -> Circuit:
    return Circuit.from_json(item["record"]["S"], int(item["version"]["N"]))
