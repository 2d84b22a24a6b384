"""GET /audit's queries through the HTTP API (docs/history.md, "The audit log"): an end time
(exclusive), the actions about one workflow or one run, and several actions at once (a comma list
or the parameter repeated). On the embedded default (DynamoDB on moto): the same filters on every
History adapter are tests/component/test_history_contract.py's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.clock import iso, parse_iso
from tests.e2e.test_history import CHAIN, REVIEW, call


@pytest.fixture
def api(runtime):
    runtime.start(http_port=0)
    return runtime.gateway.url


def entries(api: str, query: str) -> list[tuple[str, str, str]]:
    status, page = call(api, "GET", "/audit?" + query)
    assert status == 200, page
    return sorted((e["action"], e["run_id"], e["workflow_id"]) for e in page["entries"])


def test_the_audit_log_answers_by_workflow_run_time_and_several_actions(api, runtime):
    assert call(api, "POST", "/workflows", {"workflow": REVIEW})[0] == 201
    _, review = call(api, "POST", "/runs", {"workflow": "review"})
    _, chain = call(api, "POST", "/runs", {"workflow": CHAIN})
    assert call(api, "POST", f"/runs/{review['run_id']}/cancel", {"reason": "wrong input"})[0] == 202
    assert call(api, "POST", "/runs", {"workflow": "ghost"})[0] == 404  # refused: about the workflow asked for
    first, second = review["run_id"], chain["run_id"]

    assert entries(api, "workflow=review") == [("cancel", first, "review"), ("register", "", "review"),
                                               ("start", first, "review")]
    assert entries(api, f"run={second}") == [("start", second, "chain")]
    assert entries(api, "workflow=ghost") == [("start", "", "ghost")]
    starts_and_cancels = sorted([("cancel", first, "review"), ("start", "", "ghost"), ("start", first, "review"),
                                 ("start", second, "chain")])
    assert entries(api, "action=start,cancel") == starts_and_cancels
    assert entries(api, "action=start&action=cancel") == starts_and_cancels
    assert entries(api, f"action=cancel&action=register&run={first}") == [("cancel", first, "review")]

    # The clock stands still: every entry is at this moment. until is exclusive, since inclusive.
    now = iso(runtime.clock.now())
    later = iso(parse_iso(now) + timedelta(milliseconds=1))
    assert entries(api, f"until={now}") == []
    assert len(entries(api, f"since={now}&until={later}")) == 5
    assert entries(api, f"workflow=chain&until={later}") == [("start", second, "chain")]


@pytest.mark.parametrize("query", [
    "until=tomorrow", "until=2026-01-01T00:00:00", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
    "action=start,delete", "action=start&action=", "workflow=no%20such", "workflow=" + "w" * 129, "run=" + "r" * 201,
])
def test_bad_queries_are_json_400s(api, query):
    status, body = call(api, "GET", "/audit?" + query)
    assert status == 400 and isinstance(body["error"], str), body
