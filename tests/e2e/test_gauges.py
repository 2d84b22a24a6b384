"""The RunsInProgress gauge on the embedded default: GET /metrics calls GaugesFunction (held to its role
in template.yaml, as its schedule runs it on AWS), which reads the runs table's status index; a run that
waits is in progress, and once cancelled it is not."""

from __future__ import annotations

from tests.e2e.test_history import api, call, ended  # noqa: F401 (api: the fixture)
from tests.e2e.test_metrics import metrics

WAITING = """
workflow:
  metadata: {id: waiting, version: 1.0.0}
  tasks:
    - {id: later, type: wait, config: {duration: 1h}}
"""


def test_a_waiting_run_is_in_progress_until_it_ends(api):  # noqa: F811
    _, samples = metrics(api)
    assert samples['loopline_runs_in_progress{status="RUNNING"}'] == 0
    status, started = call(api, "POST", "/runs", {"workflow": WAITING})
    assert status == 201
    run_id = started["run_id"]
    kind, samples = metrics(api)
    assert "text/plain" in kind
    assert samples['loopline_runs_in_progress{status="RUNNING",workflow="waiting"}'] == 1
    assert samples['loopline_runs_in_progress{status="RUNNING"}'] == 1
    assert samples['loopline_runs_in_progress{status="PAUSED"}'] == 0

    assert call(api, "POST", f"/runs/{run_id}/cancel", {"reason": "not needed"})[0] == 202
    assert ended(api, run_id)["status"] == "CANCELLED"
    _, samples = metrics(api)
    assert samples['loopline_runs_in_progress{status="RUNNING"}'] == 0
    assert not any('workflow="waiting"' in name for name in samples if name.startswith("loopline_runs_in"))
