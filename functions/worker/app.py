"""Worker: takes ready-queue batches and advances runs, reporting partial batch failures; takes the
task runner's results from the result queue."""

import json
import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from infra.engine import Busy
from infra.wiring import get_engine

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    # By the queue it came from, never by its shape: anyone the runner's role lets send to the result
    # queue could write a body that looks like an engine message; from there it is only ever a result.
    time_left = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    if record.event_source_arn == os.environ.get("LOOPLINE_TASK_RESULT_QUEUE_ARN"):
        outcome = get_engine().accept_result(record.body, time_left)
        metrics.add_metric(name="TaskResults", unit=MetricUnit.Count, value=1)
        if outcome.startswith("dropped"):
            metrics.add_metric(name="TaskResultsDropped", unit=MetricUnit.Count, value=1)
        return
    message = get_engine().queue.read(record.body)  # resolves a claim-checked body
    try:
        get_engine().handle(message, time_left)
    except Busy:
        metrics.add_metric(name="MessagesBusy", unit=MetricUnit.Count, value=1)
        logger.info("task busy; message returns after its visibility timeout", extra={"queue_message": message})
        raise
    metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    # Exec messages of one run in this batch: what they load is read once, together (Engine.batch).
    with get_engine().batch(_work_messages(event)):
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)


def _work_messages(event) -> list:
    """The batch's work-queue bodies as JSON, where they parse (a claim-checked or broken one is left to
    its record's own handling)."""
    found = []
    for record in event.get("Records") or []:
        if record.get("eventSourceARN") == os.environ.get("LOOPLINE_TASK_RESULT_QUEUE_ARN"):
            continue
        try:
            found.append(json.loads(record.get("body") or ""))
        except ValueError:
            continue
    return found
