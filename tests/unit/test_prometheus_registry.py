"""loopline.memory.prometheus: metric points in, the Prometheus text exposition format out."""

from __future__ import annotations

from loopline.memory.prometheus import PrometheusRegistry, metric_name
from statemachine.metrics import MetricName, MetricPoint, MetricUnit


def test_counts_are_counters_and_durations_histograms_by_label_set():
    registry = PrometheusRegistry()
    registry.emit([MetricPoint(MetricName.RUNS_STARTED, MetricUnit.COUNT, 1, "RUNNING", "wf"),
                   MetricPoint(MetricName.RUNS_STARTED, MetricUnit.COUNT, 1, "RUNNING", "wf"),
                   MetricPoint(MetricName.RUNS_STARTED, MetricUnit.COUNT, 1, "RUNNING", "other"),
                   MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, 0.3, "COMPLETED"),
                   MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, 7.5, "COMPLETED")])
    lines = registry.render().splitlines()
    assert lines[:4] == ["# HELP loopline_runs_started_total RunsStarted (a count)",
                         "# TYPE loopline_runs_started_total counter",
                         'loopline_runs_started_total{status="RUNNING",workflow="other"} 1',
                         'loopline_runs_started_total{status="RUNNING",workflow="wf"} 2']
    assert "# TYPE loopline_task_duration_seconds histogram" in lines
    assert 'loopline_task_duration_seconds_bucket{status="COMPLETED",le="0.1"} 0' in lines
    assert 'loopline_task_duration_seconds_bucket{status="COMPLETED",le="0.5"} 1' in lines
    assert 'loopline_task_duration_seconds_bucket{status="COMPLETED",le="10"} 2' in lines
    assert 'loopline_task_duration_seconds_bucket{status="COMPLETED",le="+Inf"} 2' in lines
    assert 'loopline_task_duration_seconds_sum{status="COMPLETED"} 7.8' in lines
    assert 'loopline_task_duration_seconds_count{status="COMPLETED"} 2' in lines


def test_an_empty_registry_is_an_empty_exposition():
    assert PrometheusRegistry().render() == "\n"


def test_a_label_value_is_escaped_so_the_user_cannot_forge_a_line():
    registry = PrometheusRegistry()
    registry.emit([MetricPoint(MetricName.RUNS_FAILED, MetricUnit.COUNT, 1, "FAILED", 'a"b\\c\nloopline_x 9')])
    forged = 'loopline_runs_failed_total{status="FAILED",workflow="a\\"b\\\\c\\nloopline_x 9"} 1'
    assert registry.render().splitlines()[2] == forged


def test_names_follow_the_prometheus_conventions():
    decision = metric_name(MetricName.APPROVAL_DECISION_TIME, MetricUnit.SECONDS)
    assert decision == "loopline_approval_decision_time_seconds"
    assert metric_name(MetricName.DEAD_LETTERS, MetricUnit.COUNT) == "loopline_dead_letters_total"


def test_sizes_are_histograms_in_bytes_with_their_own_buckets():
    registry = PrometheusRegistry()
    registry.emit([MetricPoint(MetricName.CHECKPOINT_SIZE, MetricUnit.BYTES, 300, "COMPLETED", "wf", "python"),
                   MetricPoint(MetricName.CHECKPOINT_SIZE, MetricUnit.BYTES, 5000, "COMPLETED", "wf", "python")])
    lines = registry.render().splitlines()
    labels = 'status="COMPLETED",task_type="python",workflow="wf"'
    assert "# HELP loopline_checkpoint_size_bytes CheckpointSize (bytes)" in lines
    assert "# TYPE loopline_checkpoint_size_bytes histogram" in lines
    assert f'loopline_checkpoint_size_bytes_bucket{{{labels},le="256"}} 0' in lines
    assert f'loopline_checkpoint_size_bytes_bucket{{{labels},le="1024"}} 1' in lines
    assert f'loopline_checkpoint_size_bytes_bucket{{{labels},le="16384"}} 2' in lines
    assert f'loopline_checkpoint_size_bytes_sum{{{labels}}} 5300' in lines
