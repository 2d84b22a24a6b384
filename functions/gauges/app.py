"""Gauges: every minute (template.yaml's schedule), how many runs are in progress, by workflow and status,
emitted as EMF (docs/metrics.md, RunsInProgress). A reading, not a count: nothing is kept between two."""

from aws_lambda_powertools import Logger, Tracer

from infra.gauges import in_progress_points
from infra.wiring import get_metrics, get_run_queries

logger, tracer = Logger(), Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event, context):
    points = in_progress_points(get_run_queries())
    get_metrics().emit(points)
    return {"RunsInProgress": {p.status: p.value for p in points if not p.workflow}}
