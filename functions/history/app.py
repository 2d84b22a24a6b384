"""History: the records of the runs table's DynamoDB stream become the runs' history entries.

A batch's entries are kept in a few requests (HistoryRecorder.record_all), in order, as far as
they go; the first record not done is reported (partial batch response) and the shard is retried
from it. Entries are kept once each, so the records after it, delivered again, add nothing twice.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from infra.wiring import get_recorder

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    records = event.get("Records") or []
    metrics.add_metric(name="HistoryBatches", unit=MetricUnit.Count, value=1)
    done = get_recorder().record_all([record.get("dynamodb") or {} for record in records])
    kept = records if done.failed is None else records[:done.failed]
    metrics.add_metric(name="HistoryRecords", unit=MetricUnit.Count, value=len(kept))
    metrics.add_metric(name="HistoryEntries", unit=MetricUnit.Count, value=done.written)
    # Lambda retries a stream from the lowest sequence number reported: the first record not done.
    failed = [] if done.failed is None else records[done.failed:done.failed + 1]
    return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]} for record in failed]}
