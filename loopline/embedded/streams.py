"""The DynamoDB stream event source mappings of the template, as Lambda runs them, on moto.

Each poll reads one batch per shard of each mapped stream and invokes the function with Lambda's
DynamoDB-stream event shape. As on AWS: a failed invocation retries the batch from its first
record; a partial batch response (ReportBatchItemFailures) retries from the first failed record,
the records before it being done; after MaximumRetryAttempts the batch's location is sent to the
failure destination and the shard moves past it. (Lambda may also bisect a failing batch; with
partial batch responses that changes which records are delivered again, not whether one is lost,
so it is left out here.)
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from botocore.config import Config

from .provision import StreamSource

# moto (and LocalStack) answer at the service's regional endpoint, not at the account-based one
# botocore picks for DynamoDB Streams by default.
STREAMS_CONFIG = Config(account_id_endpoint_mode="disabled")
IDLE_POLL = 0.25  # seconds between two polls of a quiet stream, as Lambda polls a shard four times a second


class ShardReader(Protocol):
    """A GetRecords of a shard: the reply as boto3 gives it (``Records``, ``NextShardIterator``)."""

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]: ...


class ApiShardReader:
    """GetRecords through the DynamoDB Streams API (an emulator at an endpoint; moto_streams.py on moto)."""

    def __init__(self, streams: Any):
        self._streams = streams

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        return self._streams.get_records(ShardIterator=iterator, Limit=limit)


@dataclass
class _Shard:
    source: StreamSource
    shard_id: str
    iterator: str | None = None
    failures: int = 0  # consecutive failed deliveries of the batch at the iterator


class StreamPoller:
    """``checkpoints``: shard id -> the sequence number of the last record done. The mapping's position
    is the service's state, not the function's: it outlives a LocalRuntime (held by EmbeddedAws), so a
    restarted runtime carries on where the last one stopped instead of reading the stream again."""

    def __init__(self, streams, sqs, sources: tuple[StreamSource, ...], checkpoints: dict[str, str],
                 invoke: Callable[[str, dict[str, Any]], Any], log: Callable[[str], None],
                 reader: ShardReader | None = None):
        self._streams = streams
        self._reader = reader or ApiShardReader(streams)  # the records; shards and iterators through the API
        self._sqs = sqs
        self._sources = sources
        self._checkpoints = checkpoints
        self.invoke = invoke  # the function's invocation (LocalRuntime.invoke)
        self._log = log
        self._shards: list[_Shard] | None = None
        self._due = 0.0  # time.monotonic() of the next poll

    def poll_when_due(self) -> int:
        """``poll_once`` if the streams are due: at once while records come, else after IDLE_POLL (an idle
        server stays quiet)."""
        now = time.monotonic()
        if now < self._due:
            return 0
        delivered = self.poll_once()
        self._due = now if delivered else now + IDLE_POLL
        return delivered

    @property
    def retrying(self) -> bool:
        """A failed batch waits to be delivered again (after IDLE_POLL, as Lambda retries it)."""
        return any(shard.failures for shard in self._shards or ())

    def _all_shards(self) -> list[_Shard]:
        if self._shards is None:
            self._shards = [
                _Shard(source, shard["ShardId"]) for source in self._sources
                for shard in self._streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]]
        return self._shards

    def poll_once(self) -> int:
        """Deliver one batch per shard; returns the records delivered and done."""
        return sum(self._poll(shard) for shard in self._all_shards())

    def _iterator(self, shard: _Shard, kind: str = "TRIM_HORIZON", sequence: str | None = None) -> str:
        kwargs: dict[str, Any] = {"StreamArn": shard.source.stream_arn, "ShardId": shard.shard_id,
                                  "ShardIteratorType": kind}
        if sequence is not None:
            kwargs["SequenceNumber"] = sequence
        return self._streams.get_shard_iterator(**kwargs)["ShardIterator"]

    def _poll(self, shard: _Shard) -> int:
        source = shard.source
        if shard.iterator is None:
            done = self._checkpoints.get(shard.shard_id)
            shard.iterator = self._iterator(shard, "AFTER_SEQUENCE_NUMBER", done) if done else self._iterator(shard)
        reply = self._reader.get_records(shard.iterator, source.batch_size)
        records = reply.get("Records", [])
        if not records:
            shard.iterator = reply.get("NextShardIterator") or shard.iterator
            return 0
        event = {"Records": [_lambda_record(r, source.stream_arn) for r in records]}
        try:
            response = self.invoke(source.function, event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} \
                if source.report_batch_item_failures else set()
        except Exception:  # the whole batch failed: it is delivered again, from its first record
            self._log(f"{source.function} error:\n" + traceback.format_exc())
            failed = {records[0]["dynamodb"]["SequenceNumber"]}
        if not failed:
            shard.iterator, shard.failures = reply.get("NextShardIterator"), 0
            self._checkpoints[shard.shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            return len(records)
        first = min(failed, key=int)
        done = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) < int(first)]
        if done:
            self._checkpoints[shard.shard_id] = done[-1]["dynamodb"]["SequenceNumber"]
        shard.failures = shard.failures + 1 if not done else 1
        if 0 <= source.maximum_retry_attempts < shard.failures:
            self._give_up(shard, records)
            return len(done)
        shard.iterator = self._iterator(shard, "AT_SEQUENCE_NUMBER", first)  # the failed record comes back
        return len(done)

    def _give_up(self, shard: _Shard, records: list[dict[str, Any]]) -> None:
        """Past every retry: the batch's location goes to the failure destination, the shard moves on."""
        source = shard.source
        first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
        self._log(f"{source.function}: gave up on stream records {first}..{last} after {shard.failures - 1} retries")
        if source.on_failure is not None:
            self._sqs.send_message(QueueUrl=source.on_failure, MessageBody=json.dumps({
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": shard.failures},
                "DDBStreamBatchInfo": {"shardId": shard.shard_id, "startSequenceNumber": first,
                                       "endSequenceNumber": last, "streamArn": source.stream_arn,
                                       "batchSize": len(records)}}))
        shard.iterator, shard.failures = self._iterator(shard, "AFTER_SEQUENCE_NUMBER", last), 0
        self._checkpoints[shard.shard_id] = last


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # boto3 parses it; Lambda's event carries epoch seconds (moto_streams.py too)
        change["ApproximateCreationDateTime"] = int(created.astimezone(timezone.utc).timestamp())
    return {"eventID": record.get("eventID"), "eventName": record.get("eventName"), "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion"), "dynamodb": change,
            "eventSourceARN": stream_arn}
