"""Worker: takes ready-queue batches and advances runs, reporting partial batch failures."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from infra.engine import Busy
from infra.wiring import get_engine

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    message = get_engine().queue.read(record.body)  # resolves a claim-checked body
    try:
        get_engine().handle(message)
    except Busy:
        metrics.add_metric(name="MessagesBusy", unit=MetricUnit.Count, value=1)
        logger.info("task busy; message returns after its visibility timeout", extra={"queue_message": message})
        raise
    metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
