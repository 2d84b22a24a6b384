"""Reading the gauges (statemachine/gauges.py) from the run listing: every run in a status that is not an
end, a page at a time through the status index (``RunQueries.list_runs``; on DynamoDB a Query of the
``ByStatus`` index per page, no scan), and nothing else. On AWS GaugesFunction emits them every minute
(functions/gauges/app.py); locally the Prometheus registry reads them at each scrape of GET /metrics."""

from __future__ import annotations

from statemachine.gauges import IN_PROGRESS, runs_in_progress
from statemachine.metrics import MetricPoint

from .listing import RunQueries, RunQuery

PAGE = 500  # runs per page read


def in_progress_points(queries: RunQueries, totals: bool = True) -> list[MetricPoint]:
    runs: list[tuple[str, str]] = []
    for status in IN_PROGRESS:
        query = RunQuery(status=status, limit=PAGE)
        while True:
            page = queries.list_runs(query)
            runs += [(summary.status, summary.workflow_id) for summary in page.runs]
            if not page.more or not page.runs:
                break
            query = RunQuery(status=status, limit=PAGE, after=page.runs[-1].position)
    return runs_in_progress(runs, totals)
