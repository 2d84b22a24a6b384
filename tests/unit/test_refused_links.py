"""Refused links cost a bounded record per task (issue #9, item 4): a count and the last few."""

from __future__ import annotations

import json

import pytest

from infra.engine import LinkError
from infra.engine.redrive import kept_nodes, resets
from infra.ports import TaskChange
from tests.unit.test_engine_approvals import board, links
from tests.unit.test_engine_semantics import settle, start

KEPT = 5  # refused uses kept in full per task (infra/engine/approvals.py REFUSALS_KEPT)


def refuse_times(local, token: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(LinkError) as refused:
            local.engine.decide(token, "REJECTED")
        assert refused.value.status == 410


def test_three_thousand_refusals_leave_the_run_view_as_six_do(local):
    small, large = (start(local, board(), {"name": n}) for n in ("a", "b"))
    sizes = {}
    for run_id, times in ((small, 6), (large, 3000)):
        token = links(local, settle(local, run_id)["run_id"])["ann@example.com"]
        local.engine.decide(token, "APPROVED")
        refuse_times(local, token, times)
        view = local.engine.describe_run(run_id)
        assert view["refused_count"] == times and len(view["refused_links"]) == KEPT
        assert len(local.store.list_tasks(run_id)) == len(local.store.list_tasks(small))
        sizes[times] = len(json.dumps({k: v for k, v in view.items() if k not in ("run_id", "refused_count")}))
    assert sizes[3000] == sizes[6]  # the same items, the same size: only the count differs


def test_the_view_still_reads_one_item_per_refusal_from_older_releases(local):
    run_id = start(local, board(), {"name": "old"})
    settle(local, run_id)
    for i in range(8):  # as releases before the bounded record wrote them: one item per refusal
        old = {"reason": "a used or expired link", "approver": "ann@example.com", "at": f"2030-01-01T00:00:{i:02d}Z"}
        local.store.change_task(run_id, f"vote:refused:{i:012x}", TaskChange(
            status="COMPLETED", from_status=(None,), set={"output": old}))
    token = links(local, run_id)["ann@example.com"]
    local.engine.decide(token, "APPROVED")
    refuse_times(local, token, 2)
    view = local.engine.describe_run(run_id)
    assert view["refused_count"] == 10 and len(view["refused_links"]) == KEPT + 2
    older = [r["at"][-3:-1] for r in view["refused_links"] if r["at"].startswith("2030")]
    assert older == ["03", "04", "05", "06", "07"]  # the last few of those too


def test_redrive_keeps_the_refusal_records(local):
    run_id = start(local, board(), {"name": "r"})
    token = links(local, settle(local, run_id)["run_id"])["ann@example.com"]
    local.engine.decide(token, "APPROVED")
    refuse_times(local, token, 2)
    recs = local.store.list_tasks(run_id)
    plan = local.engine.plan(local.store.get_run(run_id).plan_hash)
    assert "vote:refused" in recs and "vote:refused" not in resets(plan, recs, kept_nodes(plan, recs))
