"""The stream poller's reads of moto's streams, made on moto's backend instead of through a request.

The stream poller (streams.py) stands in for Lambda's event source mapping: on AWS its GetRecords are
the Lambda service's own reads, not the function's and not billed. Through boto3 each cost moto a
request (every record's two images serialized) and botocore its parsing (every attribute value walked
by shape): 1.37 ms a call, two per chain of 10 steps (bench/profile_transition.py, 2026-12-05 14:16 UTC).
Here a read asks moto's DynamoDB Streams backend for the same records, under the same lock a request
holds (concurrency.moto_step), and gives them as botocore would have parsed them: the same dicts,
copied, with ApproximateCreationDateTime in the epoch seconds the Lambda event carries (what
streams._lambda_record makes of botocore's datetime: moto's answer truncates to milliseconds, so
the whole seconds are the same). A batch holding a binary value anywhere (B, BS: moto keeps those
base64-encoded at the top of an item and decoded inside a map) is read again through the API, as
before. Shards and iterators still go through the API: moto's iterators are the backend's, so both
reads of one iterator give the same records. tests/component/test_moto_streams.py compares the
events of both ways.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any

from .concurrency import moto_step
from .streams import ApiShardReader

_BINARY = ("B", "BS")


class MotoShardReader:
    def __init__(self, streams: Any):
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        self._api = ApiShardReader(streams)
        self._backends = dynamodbstreams_backends

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        # The iterator is "<table arn>/stream/<label>|1|<id>": its account and region are the backend's.
        _, _, _, region, account = iterator.split(":", 5)[:5]
        with moto_step():
            reply = self._backends[account][region].get_records(iterator, limit)
            records = [_copy(record) for record in reply["Records"]]
        if any(_holds_binary(record["dynamodb"]) for record in records):
            return self._api.get_records(iterator, limit)
        for record in records:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if isinstance(created, datetime):  # naive UTC in moto, as moto's answer serializes it
                record["dynamodb"]["ApproximateCreationDateTime"] = calendar.timegm(created.timetuple())
        return {"Records": records, "NextShardIterator": reply["NextShardIterator"]}


def _copy(value: Any) -> Any:
    """A copy of a record (dicts, lists and plain values): the backend keeps the records it hands out."""
    if type(value) is dict:
        return {key: _copy(member) for key, member in value.items()}
    if type(value) is list:
        return [_copy(member) for member in value]
    return value


def _holds_binary(value: Any) -> bool:
    if type(value) is dict:
        return any(key in _BINARY or _holds_binary(member) for key, member in value.items())
    if type(value) is list:
        return any(_holds_binary(member) for member in value)
    return isinstance(value, (bytes, bytearray))
