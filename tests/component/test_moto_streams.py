"""loopline/embedded/moto_streams.py: the stream poller's reads off moto's backend give the function the
events the API's GetRecords gave, page by page; a batch holding a binary value is read through the API."""

from __future__ import annotations

from loopline.embedded.moto_streams import MotoShardReader
from loopline.embedded.streams import STREAMS_CONFIG, ApiShardReader, _lambda_record
from tests.component.moto_answers import RICH_ITEM

# Every kind of value but binary; no empty map key (moto answers one in a shape botocore cannot parse).
PLAIN = {**{k: v for k, v in RICH_ITEM.items() if k not in ("b", "bs", "m_with_b", "m")},
         "m": {"M": {k: v for k, v in RICH_ITEM["m"]["M"].items() if k}}}


def _write_changes(db, table: str, partition: str, binary: bool) -> None:
    """Inserts, modifies (a put over an item, an update) and removes, of items holding every plain kind."""
    key = {"pk": {"S": partition}, "sk": {"S": "T#a"}}
    db.put_item(TableName=table, Item={**key, **PLAIN, **({"blob": {"B": b"\x00\xff"}} if binary else {})})
    db.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :s, n = n + :one REMOVE ss",
                   ExpressionAttributeNames={"#s": "status"},
                   ExpressionAttributeValues={":s": {"S": "RUNNING"}, ":one": {"N": "1"}})
    for i in range(5):
        db.put_item(TableName=table, Item={"pk": {"S": partition}, "sk": {"S": f"T#{i}"}, "i": {"N": str(i)},
                                           "m": {"M": {"deep": {"L": [{"S": "x"}, {"NULL": True}]}}}})
    db.put_item(TableName=table, Item={"pk": {"S": partition}, "sk": {"S": "T#0"}, "i": {"N": "10"}})
    db.delete_item(TableName=table, Key=key)


def _events(reader, streams, arn: str, limit: int) -> list[list[dict]]:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    pages = []
    while True:
        reply = reader.get_records(iterator, limit)
        if not reply["Records"]:
            return pages
        pages.append([_lambda_record(record, arn) for record in reply["Records"]])
        iterator = reply["NextShardIterator"]


def test_the_backends_records_are_the_apis_events_page_by_page(aws):
    db, table = aws.client("dynamodb"), aws.stack.physical["RunsTable"]
    streams = aws.client("dynamodbstreams", config=STREAMS_CONFIG)
    arn = aws.stack.stream_sources[0].stream_arn
    _write_changes(db, table, "plain", binary=False)
    for limit in (3, 100):
        through_api = _events(ApiShardReader(streams), streams, arn, limit)
        off_the_backend = _events(MotoShardReader(streams), streams, arn, limit)
        assert off_the_backend == through_api
        assert sum(len(page) for page in through_api) == 9
        assert {event["eventName"] for page in through_api for event in page} == {"INSERT", "MODIFY", "REMOVE"}
    first = off_the_backend[0][0]["dynamodb"]
    first["NewImage"]["s"]["S"] = "changed by the function"  # an event is the function's to change
    assert _events(MotoShardReader(streams), streams, arn, 100)[0][0]["dynamodb"]["NewImage"]["s"] == {"S": "text"}


def test_a_batch_holding_a_binary_value_is_read_through_the_api(aws):
    db, table = aws.client("dynamodb"), aws.stack.physical["RunsTable"]
    streams = aws.client("dynamodbstreams", config=STREAMS_CONFIG)
    arn = aws.stack.stream_sources[0].stream_arn
    _write_changes(db, table, "binary", binary=True)
    calls: list[str] = []
    streams.meta.events.register("before-call.dynamodbstreams.GetRecords", lambda **_: calls.append("GetRecords"))
    off_the_backend = _events(MotoShardReader(streams), streams, arn, 4)
    assert calls == ["GetRecords"] * 2  # the two pages holding the binary item's images; the rest off the backend
    calls.clear()
    assert off_the_backend == _events(ApiShardReader(streams), streams, arn, 4)
    assert off_the_backend[0][0]["dynamodb"]["NewImage"]["blob"] == {"B": b"\x00\xff"}


def test_the_embedded_default_reads_its_streams_off_moto(runtime):
    assert isinstance(runtime.streams._reader, MotoShardReader)
