"""The RunsInProgress gauge's pure reading (statemachine/gauges.py) and how the local registry keeps a
gauge (loopline/memory/prometheus.py): one reading replaces the last, never summed."""

from __future__ import annotations

from loopline.memory.prometheus import PrometheusRegistry
from statemachine.gauges import runs_in_progress
from statemachine.metrics import MetricName, MetricPoint, MetricUnit


def gauge(count: float, status: str, workflow: str = "") -> MetricPoint:
    return MetricPoint(MetricName.RUNS_IN_PROGRESS, MetricUnit.COUNT, count, status, workflow)


def test_runs_not_ended_are_counted_by_workflow_and_status_with_totals():
    runs = [("RUNNING", "a"), ("RUNNING", "a"), ("PAUSED", "b"), ("COMPLETED", "a"), ("FAILED", "b")]
    assert runs_in_progress(runs) == [gauge(1, "PAUSED", "b"), gauge(2, "RUNNING", "a"),
                                      gauge(2, "RUNNING"), gauge(1, "PAUSED"), gauge(0, "COMPENSATING")]
    assert runs_in_progress(runs, totals=False) == [gauge(1, "PAUSED", "b"), gauge(2, "RUNNING", "a")]


def test_a_reading_replaces_the_last_and_is_rendered_as_a_gauge():
    registry = PrometheusRegistry()
    registry.emit(runs_in_progress([("RUNNING", "a"), ("RUNNING", "b")]))
    registry.emit(runs_in_progress([("RUNNING", "a")]))  # b's run ended: its series goes
    text = registry.render()
    assert "# TYPE loopline_runs_in_progress gauge" in text
    assert 'loopline_runs_in_progress{status="RUNNING",workflow="a"} 1' in text
    assert 'workflow="b"' not in text
    assert 'loopline_runs_in_progress{status="RUNNING"} 1' in text


def test_each_render_takes_a_fresh_reading():
    reading = [[("RUNNING", "a")], []]
    registry = PrometheusRegistry(read_gauges=lambda: registry.emit(runs_in_progress(reading.pop(0))))
    assert 'loopline_runs_in_progress{status="RUNNING",workflow="a"} 1' in registry.render()
    later = registry.render()
    assert 'loopline_runs_in_progress{status="RUNNING"} 0' in later and 'workflow="a"' not in later


def test_local_mode_reads_its_store_at_each_scrape(local):
    from tests.e2e.test_gauges import WAITING
    from tests.unit.test_engine_semantics import start

    run_id = start(local, WAITING)
    local.pump_once()
    assert 'loopline_runs_in_progress{status="RUNNING",workflow="waiting"} 1' in local.metrics.render()
    local.engine.cancel_run(run_id, "not needed")
    while local.pump_once():
        pass
    assert 'loopline_runs_in_progress{status="RUNNING"} 0' in local.metrics.render()
