"""History: each record of the runs table's DynamoDB stream becomes the run's history entries.

A record that fails is reported (partial batch response) and the shard is retried from it; the
entries are kept once each, so the records after it, delivered again, add nothing twice.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from infra.wiring import get_recorder

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)  # reports each failed record alone
logger, tracer, metrics = Logger(), Tracer(), Metrics()


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> None:
    written = get_recorder().record(record.raw_event.get("dynamodb") or {})
    metrics.add_metric(name="HistoryRecords", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="HistoryEntries", unit=MetricUnit.Count, value=written)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    metrics.add_metric(name="HistoryBatches", unit=MetricUnit.Count, value=1)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
