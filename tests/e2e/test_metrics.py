"""`GET /metrics` on the embedded default: a workflow that fails halfway, read back as Prometheus text
from the registry the history consumer (the runs table's stream into HistoryFunction) feeds."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.e2e.test_history import call, ended, history

HALFWAY = """
workflow:
  metadata: {id: halfway, version: 1.0.0}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - id: b
      type: python
      depends_on: [a]
      config: {code: "raise ValueError('boom')"}
    - {id: c, type: python, depends_on: [b], config: {code: "result = 3"}}
"""


@pytest.fixture
def api(runtime):
    runtime.start(http_port=0)
    return runtime.gateway.url


def metrics(api: str) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(api + "/metrics", timeout=30) as reply:
        kind, text = reply.headers["Content-Type"], reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return kind, samples


def test_a_run_that_fails_halfway_shows_in_the_counters(api):
    status, started = call(api, "POST", "/runs", {"workflow": HALFWAY})
    assert status == 201
    run_id = started["run_id"]
    assert ended(api, run_id)["status"] == "FAILED"
    history(api, run_id, "FAILED")  # the stream has delivered the run's end to the consumer
    kind, samples = metrics(api)
    assert kind.startswith("text/plain; version=0.0.4")
    assert samples['loopline_runs_started_total{status="RUNNING",workflow="halfway"}'] == 1
    assert samples['loopline_runs_failed_total{status="FAILED",workflow="halfway"}'] == 1
    assert samples['loopline_run_duration_seconds_count{status="FAILED",workflow="halfway"}'] == 1
    assert not any(name.startswith(("loopline_runs_completed", "loopline_runs_cancelled")) for name in samples)
    # A task's series carries its run's workflow and its type, which HistoryFunction reads from the run
    # and its plan (the embedded stack holds it to its role in template.yaml: GetItem on those tables).
    labels = 'task_type="python",workflow="halfway"'
    assert samples[f'loopline_task_duration_seconds_count{{status="COMPLETED",{labels}}}'] == 1  # a
    assert samples[f'loopline_task_duration_seconds_count{{status="FAILED",{labels}}}'] == 1  # b
    assert [name for name in samples if name.startswith("loopline_task_duration_seconds_count")] == [
        f'loopline_task_duration_seconds_count{{status="COMPLETED",{labels}}}',
        f'loopline_task_duration_seconds_count{{status="FAILED",{labels}}}']
    assert not any(name.startswith(("loopline_dead_letters", "loopline_task_retries")) for name in samples)


def test_metrics_is_read_only(api):
    request = urllib.request.Request(api + "/metrics", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code in (404, 405)
