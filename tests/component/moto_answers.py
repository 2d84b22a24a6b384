"""What moto answers to a fixed series of DynamoDB and DynamoDB Streams requests, printed as JSON.

Run as ``python -m tests.component.moto_answers [--speedups]`` in a process of its own: moto's
speedups (loopline/embedded/moto_update_expressions.py, moto_condition_expressions.py, moto_queries.py,
moto_attribute_values.py, moto_item_size.py) are installed for the life of a process, so
tests/component/test_moto_dynamodb_speedups.py compares two processes, one with them and one
without. The series sends each expression several times, with other values, other items and other
names (the speedups keep what depends on the string alone), and includes requests moto refuses, so
that the same error must come back the same way.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

TABLE = "answers"
KEYS = {"pk": {"S": "p"}, "sk": {"S": "s"}}

# Every kind of attribute value moto answers with: the plain ones the serializer speedup copies, and
# binary ones (and a map holding one) it leaves to moto's own walk.
RICH_ITEM = {
    "s": {"S": "text"}, "empty": {"S": ""}, "n": {"N": "12.5"}, "yes": {"BOOL": True}, "no": {"BOOL": False},
    "nothing": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
    "b": {"B": b"\x00\x01bytes"}, "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"S": "v"}, "list": {"L": [{"N": "1"}, {"M": {"deep": {"BOOL": True}}}, {"NULL": True}]},
                "": {"S": "empty key"}}},
    "m_with_b": {"M": {"blob": {"B": b"\xff"}, "s": {"S": "x"}}},
    "l": {"L": [{"S": "a"}, {"L": []}, {"M": {}}, {"SS": ["z"]}]},
}

UPDATES: list[dict[str, Any]] = [
    # The engine's shapes: many SETs and a REMOVE under a condition, answered with the new item.
    {"UpdateExpression": "SET #st = :status, #f0 = :f0, #f1 = :f1 REMOVE #f2",
     "ConditionExpression": "(#st = :from0 OR attribute_not_exists(#st))",
     "ExpressionAttributeNames": {"#st": "status", "#f0": "attempt", "#f1": "lease", "#f2": "error"},
     "ExpressionAttributeValues": {":status": {"S": "RUNNING"}, ":f0": {"N": "1"}, ":f1": {"S": "x"},
                                   ":from0": {"S": "READY"}},
     "ReturnValues": "ALL_NEW", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
    {"UpdateExpression": "ADD sinks_done :set, sinks_remaining :minus",
     "ConditionExpression": "NOT contains(sinks_done, :id)",
     "ExpressionAttributeValues": {":set": {"SS": ["a"]}, ":minus": {"N": "-1"}, ":id": {"S": "a"}},
     "ReturnValues": "UPDATED_NEW"},
    {"UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one, "
                         "tags = list_append(if_not_exists(tags, :empty), :tag)",
     "ExpressionAttributeNames": {"#c": "counter"},
     "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []},
                                   ":tag": {"L": [{"S": "t"}]}},
     "ReturnValues": "ALL_NEW"},
    {"UpdateExpression": "SET #m.#i = :v, #l[0] = :v, #rich = :rich",
     "ExpressionAttributeNames": {"#rich": "rich", "#m": "m", "#i": "inner", "#l": "l"},
     "ExpressionAttributeValues": {":v": {"S": "changed"}, ":rich": {"M": {k: v for k, v in RICH_ITEM.items()
                                                                           if k != "m"}}},
     "ReturnValues": "UPDATED_OLD"},
    {"UpdateExpression": "DELETE ss :gone SET n = n - :one",
     "ExpressionAttributeValues": {":gone": {"SS": ["a"]}, ":one": {"N": "1"}}, "ReturnValues": "ALL_OLD"},
    {"UpdateExpression": "SET s = :v", "ConditionExpression": "attribute_not_exists(pk)",
     "ExpressionAttributeValues": {":v": {"S": "v"}}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
    {"UpdateExpression": "SET s = :t",
     "ConditionExpression": "(attribute_not_exists(#l) OR NOT contains(#l, :t)) AND (begins_with(s, :t) "
                            "OR n BETWEEN :a AND :b OR #st IN (:x, :y))",
     "ExpressionAttributeNames": {"#l": "l", "#st": "status"},
     "ExpressionAttributeValues": {":t": {"S": "te"}, ":a": {"N": "1"}, ":b": {"N": "20"},
                                   ":x": {"S": "READY"}, ":y": {"S": "DONE"}}},
    {"UpdateExpression": "SET s = :t", "ConditionExpression": "attribute_exists(",
     "ExpressionAttributeValues": {":t": {"S": "te"}}},
    {"UpdateExpression": "SET s = :t", "ConditionExpression": "#nope = :t",
     "ExpressionAttributeValues": {":t": {"S": "te"}}},
    # Refused: the checks the speedup skips for an expression that passed them, with names that fail them.
    {"UpdateExpression": "SET #a = :v, #b = :v",
     "ExpressionAttributeNames": {"#a": "one", "#b": "two"}, "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET #a = :v, #b = :v",
     "ExpressionAttributeNames": {"#a": "one", "#b": "one"}, "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET #a = :v, #b = :v",
     "ExpressionAttributeNames": {"#a": "one", "#b": "sk"}, "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET #a = :v, #b = :v",
     "ExpressionAttributeNames": {"#a": "one", "#b": "two"}, "ExpressionAttributeValues": {":v": {"S": "v"}}},
    # Refused whatever the names: moto must say so every time.
    {"UpdateExpression": "SET a = :v SET b = :v", "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET a = :v, a.b = :v", "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET a = :missing", "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET a = :v +", "ExpressionAttributeValues": {":v": {"S": "v"}}},
    {"UpdateExpression": "SET n = n + :v", "ExpressionAttributeValues": {":v": {"S": "not a number"}}},
    {"UpdateExpression": "SET list2 = list_append(nope, :v)", "ExpressionAttributeValues": {":v": {"L": []}}},
    {"UpdateExpression": "REMOVE pk"},
]


class Bodies:
    """The status and body moto answered each request with, as sent (before botocore parses them)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None

    def __call__(self, response_dict: dict[str, Any], **_: Any) -> None:
        body = response_dict["body"]
        self.last = {"status": response_dict["status_code"], "body": json.loads(body) if body else None}

    def answer(self, call) -> Any:
        """moto's answer to ``call``. moto 5.2 answers an item holding a map with an empty key in a
        shape botocore cannot parse (its walk merges that key's members into the map): the body
        moto sent is the answer all the same. A condition it cannot read (or naming an undefined name)
        raises ValueError (KeyError) out of moto instead of answering: that is its answer then."""
        self.last = None
        try:
            call()
        except (self.client_error, AttributeError):
            pass
        except (ValueError, KeyError) as error:
            return {"raised": f"{type(error).__name__}: {error}"}
        if self.last is None:
            raise AssertionError("no answer from moto")
        return self.last

    client_error: type[Exception] = Exception


def _stream_answer(answer: dict[str, Any]) -> Any:
    """A stream record's id, time and iterators are new on every call; the rest is the answer."""
    body = answer["body"]
    for record in body.get("Records", []):
        record.pop("eventID", None)
        record["dynamodb"].pop("ApproximateCreationDateTime", None)
        record["dynamodb"].pop("SizeBytes", None)  # moto counts the time's digits in it
    body.pop("NextShardIterator", None)
    return answer


def random_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """Any attribute value, nested up to three deep (a fixed seed: both processes make the same)."""
    kinds = ["S", "N", "BOOL", "NULL", "SS", "NS", "B", "BS"] + (["M", "L"] * 2 if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": rng.choice(["", "x", "é ü", "a" * 30, "{}", "[]"])}
    if kind == "N":
        return {"N": rng.choice(["0", "-1", "3.25", "1e3", "12345678901234567890"])}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind in ("SS", "NS"):
        return {kind: sorted({str(rng.randint(0, 9)) for _ in range(rng.randint(1, 3))})}
    if kind == "B":
        return {"B": bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 4)))}
    if kind == "BS":
        return {"BS": [bytes([n]) for n in sorted({rng.randint(0, 255) for _ in range(2)})]}
    if kind == "M":
        return {"M": {rng.choice(["a", "b", "c", "S", "M", "L", "ListAttributeValue"]): random_value(rng, depth + 1)
                      for _ in range(rng.randint(0, 3))}}
    return {"L": [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


QUERIES: list[dict[str, Any]] = [  # each asked of partitions q0..q3 (q3 holds nothing)
    {"KeyConditionExpression": "pk = :p"},
    {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
     "ExpressionAttributeValues": {":a": {"S": "T#03"}, ":b": {"S": "T#07"}}, "ConsistentRead": True},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :t)", "ExpressionAttributeValues": {":t": {"S": "T#1"}}},
    {"KeyConditionExpression": "pk = :p AND sk > :a", "ExpressionAttributeValues": {":a": {"S": "T#05"}},
     "ScanIndexForward": False, "Limit": 3},
    {"KeyConditionExpression": "pk = :p", "FilterExpression": "#st = :done",
     "ExpressionAttributeNames": {"#st": "status"}, "ExpressionAttributeValues": {":done": {"S": "COMPLETED"}}},
    {"KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk, #st",
     "ExpressionAttributeNames": {"#st": "status"}, "Select": "SPECIFIC_ATTRIBUTES"},
    {"KeyConditionExpression": "pk = :p", "Select": "COUNT"},
    {"KeyConditionExpression": "pk = :p AND sk < :a", "ExpressionAttributeValues": {":a": {"S": "T#05"}}},
    {"KeyConditionExpression": "pk = :p AND sk <= :a", "ExpressionAttributeValues": {":a": {"S": "T#05"}}},
    {"KeyConditionExpression": "pk = :p AND sk >= :a", "ExpressionAttributeValues": {":a": {"S": "T#05"}},
     "Limit": 4},
    {"KeyConditionExpression": "pk = :p AND sk = :a", "ExpressionAttributeValues": {":a": {"S": "T#07"}}},
    {"KeyConditionExpression": "pk = :p AND sk = :a", "ExpressionAttributeValues": {":a": {"S": "T#04"}}},
    {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",  # the bounds the wrong way round
     "ExpressionAttributeValues": {":a": {"S": "T#07"}, ":b": {"S": "T#03"}}},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :t)", "ExpressionAttributeValues": {":t": {"S": "T#"}},
     "ScanIndexForward": False, "Limit": 5},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :t)", "ExpressionAttributeValues": {":t": {"S": "U"}}},
    {"KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",  # bounds that are no key of the partition
     "ExpressionAttributeValues": {":a": {"S": "T#04x"}, ":b": {"S": "T#1"}}, "Limit": 2},
    {"KeyConditionExpression": "sk = :p"},  # refused: not the hash key
]


INDEX_QUERIES: list[dict[str, Any]] = [  # of the runs table's two indexes, as GET /runs asks them
    {"IndexName": "ByStatus", "KeyConditionExpression": "#s = :v", "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":v": {"S": "COMPLETED"}}, "ScanIndexForward": False, "Limit": 4},
    {"IndexName": "ByStatus", "KeyConditionExpression": "#s = :v AND created_at BETWEEN :a AND :b",
     "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":v": {"S": "FAILED"}, ":a": {"S": "2026-12-05T10:03"},
                                   ":b": {"S": "2026-12-05T10:09"}}},
    {"IndexName": "ByWorkflow", "KeyConditionExpression": "workflow_id = :v",
     "ExpressionAttributeValues": {":v": {"S": "wf-1"}}, "Limit": 3},
    {"IndexName": "ByWorkflow", "KeyConditionExpression": "workflow_id = :v",
     "ExpressionAttributeValues": {":v": {"S": "nobody"}}},
    {"IndexName": "ByCount", "KeyConditionExpression": "n = :v", "ExpressionAttributeValues": {":v": {"N": "2.0"}}},
    {"IndexName": "ByStatus", "KeyConditionExpression": "#s = :v", "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":v": {"S": "COMPLETED"}}, "ConsistentRead": True},  # refused on an index
    {"IndexName": "NoSuchIndex", "KeyConditionExpression": "#s = :v", "ExpressionAttributeNames": {"#s": "status"},
     "ExpressionAttributeValues": {":v": {"S": "COMPLETED"}}},  # refused
]


def _index_answers(db: Any, answer: Any) -> list[Any]:
    """Queries of indexes over run items (with the index's keys) and task items (a status, no created_at),
    written out of key order, one of them then deleted, paged to the end."""
    table = f"{TABLE}-indexed"
    index = [("ByStatus", "status", "created_at"), ("ByWorkflow", "workflow_id", "created_at"), ("ByCount", "n", None)]
    db.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                              (("pk", "S"), ("sk", "S"), ("status", "S"), ("created_at", "S"), ("workflow_id", "S"),
                               ("n", "N"))],
        GlobalSecondaryIndexes=[{"IndexName": name, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                                               *([{"AttributeName": rng, "KeyType": "RANGE"}] if rng else [])]}
                                for name, hash_key, rng in index])
    rng = random.Random(9)
    runs = list(range(24))
    rng.shuffle(runs)
    for run in runs:
        status = rng.choice(["COMPLETED", "FAILED"])
        db.put_item(TableName=table, Item={"pk": {"S": f"run-{run:02d}"}, "sk": {"S": "RUN"}, "status": {"S": status},
                                           "created_at": {"S": f"2026-12-05T10:{run % 12:02d}"},
                                           "workflow_id": {"S": f"wf-{run % 3}"}, "n": {"N": str(run % 4)}})
        db.put_item(TableName=table, Item={"pk": {"S": f"run-{run:02d}"}, "sk": {"S": "T#a"}, "status": {"S": status}})
    db.delete_item(TableName=table, Key={"pk": {"S": "run-05"}, "sk": {"S": "RUN"}})
    return [page for query in INDEX_QUERIES for page in _pages(db, answer, {**query, "TableName": table})]


def _sized_item(key: str, size: int, last: str = "z") -> dict[str, Any]:
    """An item of ``size`` bytes as moto counts them (names' and strings' UTF-8 bytes, a number's
    digits), spread over several attributes, multi-byte characters among them; ``last`` names the
    attribute written last, the one that crosses the limit in an item over it."""
    head = {"pk": {"S": "size"}, "sk": {"S": key}, "n": {"N": "123"}, "é": {"S": "ü" * 1000},
            "m": {"M": {"k": {"S": "v" * 1000}, "l": {"L": [{"S": "x"}, {"BOOL": True}]}}}}
    used = sum(len(name.encode()) for name in head) + len(key) + 4 + 3 + 2000 + (1 + 1000 + 1 + 2)
    return {**head, last: {"S": "y" * (size - used - len(last))}}


def _size_answers(db: Any, answer: Any) -> list[Any]:
    """Items at moto's size limit (405,000 bytes) and one byte over it: put, put in a transaction and a
    batch, over an item whose condition fails too, and an update that grows an item past it."""
    answers = []
    for key, size in (("at", 405_000), ("over", 405_001), ("far", 420_000)):
        item = _sized_item(key, size)
        answers.append(answer(lambda: db.put_item(TableName=TABLE, Item=item, ReturnConsumedCapacity="TOTAL")))
        answers.append(answer(lambda: db.get_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})))
    at = _sized_item("at", 405_001, last="a")  # over the limit, and its condition fails on the stored item
    answers.append(answer(lambda: db.put_item(TableName=TABLE, Item=at, ConditionExpression="attribute_not_exists(sk)",
                                              ReturnValuesOnConditionCheckFailure="ALL_OLD")))
    answers.append(answer(lambda: db.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": _sized_item(f"transact{size}", size)}} for size in (1_000, 405_001)])))
    answers.append(answer(lambda: db.batch_write_item(RequestItems={TABLE: [
        {"PutRequest": {"Item": _sized_item(f"batch{size}", size)}} for size in (405_000, 405_001)]})))
    answers.append(answer(lambda: db.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                                           ExpressionAttributeValues={":p": {"S": "size"}}, Select="COUNT")))
    grown = {"pk": {"S": "size"}, "sk": {"S": "at"}}
    answers.append(answer(lambda: db.update_item(TableName=TABLE, Key=grown, UpdateExpression="SET extra = :v",
                                                 ExpressionAttributeValues={":v": {"S": "v"}})))
    return answers


def _query_answers(db: Any, answer: Any) -> list[Any]:
    """The engine's queries (a run's partition, a span of its task keys) over partitions of several sizes,
    paged to the end, with the partitions' items written in another order than their keys'."""
    rng = random.Random(7)
    for p in range(3):
        numbers = list(range(12 + 4 * p))
        rng.shuffle(numbers)
        for n in numbers:
            status = rng.choice(["COMPLETED", "FAILED"])
            db.put_item(TableName=TABLE, Item={"pk": {"S": f"q{p}"}, "sk": {"S": f"T#{n:02d}"},
                                               "status": {"S": status}, "n": {"N": str(n)}})
    db.delete_item(TableName=TABLE, Key={"pk": {"S": "q1"}, "sk": {"S": "T#04"}})
    answers = []
    for query in QUERIES:
        for p in range(4):
            values = {**query.get("ExpressionAttributeValues", {}), ":p": {"S": f"q{p}"}}
            answers.extend(_pages(db, answer, {**query, "TableName": TABLE, "ExpressionAttributeValues": values}))
    return answers


def _pages(db: Any, answer: Any, request: dict[str, Any]) -> list[Any]:
    """moto's answer to a Query, then to each next page it says there is (at most 20)."""
    pages = []
    for _ in range(20):
        pages.append(answer(lambda: db.query(**request)))
        last = (pages[-1].get("body") or {}).get("LastEvaluatedKey")
        if not last:
            break
        request = {**request, "ExclusiveStartKey": last}
    return pages


def main(speedups: bool) -> None:
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"})
    import boto3
    from moto import mock_aws

    with mock_aws():
        if speedups:
            from loopline.embedded.moto_attribute_values import install_attribute_value_speedups
            from loopline.embedded.moto_condition_expressions import install_condition_expression_speedups
            from loopline.embedded.moto_item_size import install_item_size_speedups
            from loopline.embedded.moto_queries import install_query_speedups
            from loopline.embedded.moto_update_expressions import install_update_expression_speedups

            install_update_expression_speedups()
            install_condition_expression_speedups()
            install_attribute_value_speedups()
            install_query_speedups()
            install_item_size_speedups()
        from botocore.exceptions import ClientError

        from loopline.embedded.streams import STREAMS_CONFIG

        db = boto3.client("dynamodb")
        streams = boto3.client("dynamodbstreams", config=STREAMS_CONFIG)
        bodies = Bodies()
        bodies.client_error = ClientError
        for client in (db, streams):
            client.meta.events.register("before-parse", bodies)
        _answer = bodies.answer
        arn = db.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        answers: list[Any] = []
        for round_ in range(3):  # a first sight of each expression, then kept ones: new items, then old ones
            for i, update in enumerate(UPDATES):
                key = {"pk": {"S": f"p{i}"}, "sk": {"S": f"s{round_}"}}
                if round_ == 2:
                    db.put_item(TableName=TABLE, Item={**key, **RICH_ITEM, "status": {"S": "READY"}})
                answers.append(_answer(lambda: db.update_item(TableName=TABLE, Key=key, **update)))
        answers.append(_answer(lambda: db.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": KEYS, **{k: v for k, v in UPDATES[0].items()
                                                             if not k.startswith("Return")}}}])))
        rng = random.Random(12)
        for n in range(40):  # every kind of value, nested, written and read back
            key = {"pk": {"S": "random"}, "sk": {"S": f"{n:02d}"}}
            item = {f"a{i}": random_value(rng) for i in range(rng.randint(1, 6))}
            db.put_item(TableName=TABLE, Item={**key, **item})
            answers.append(_answer(lambda: db.get_item(TableName=TABLE, Key=key)))
        db.put_item(TableName=TABLE, Item={**KEYS, **RICH_ITEM})
        answers.append(_answer(lambda: db.get_item(TableName=TABLE, Key=KEYS)))
        answers.append(_answer(lambda: db.get_item(TableName=TABLE, Key=KEYS, ProjectionExpression="m.list, b, ss")))
        answers.append(_answer(lambda: db.batch_get_item(RequestItems={TABLE: {"Keys": [KEYS]}})))
        answers.append(_answer(lambda: db.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                                                ExpressionAttributeValues={":p": {"S": "p0"}})))
        answers.extend(_size_answers(db, _answer))
        answers.extend(_query_answers(db, _answer))
        answers.extend(_index_answers(db, _answer))
        answers.append(_answer(lambda: db.scan(TableName=TABLE)))
        answers.append(_answer(lambda: db.delete_item(TableName=TABLE, Key=KEYS, ReturnValues="ALL_OLD")))
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        answers.append(_stream_answer(_answer(lambda: streams.get_records(ShardIterator=iterator))))
        json.dump(answers, sys.stdout, default=repr, indent=1, sort_keys=False)


if __name__ == "__main__":
    main("--speedups" in sys.argv[1:])
