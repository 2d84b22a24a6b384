"""Dead letters: a message that failed every delivery marks its task FAILED, with the reason."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from infra.wiring import get_engine

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    try:
        message = get_engine().queue.read(record.body)  # resolves a claim-checked body
    except ValueError:
        logger.error("a dead letter that is not JSON", extra={"body": record.body[:500]})
        return  # nothing to mark: dropped, and logged
    receives = int(record.attributes.approximate_receive_count or 0)
    outcome = get_engine().dead_letter(message, receives)
    logger.warning("dead letter", extra={"queue_message": message, "outcome": outcome})
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
