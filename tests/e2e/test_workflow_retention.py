"""A workflow's own retention (config.persistence.retention_policy, docs/history.md "Retention"): its ended
runs and their history carry that TTL instead of the deployment's RetentionDays (30 days here), on the
embedded default, the whole path: the worker ends the run, HistoryFunction writes the entries.
(moto never deletes an expired item: the TTL attribute's value is what is checked.)"""

from __future__ import annotations

import boto3

from tests.e2e.test_history import CHAIN, api, call, ended, history  # noqa: F401  (api: the fixture)

KEPT = CHAIN.replace("metadata: {id: chain, version: 1.0.0}",
                     "metadata: {id: kept, version: 1.0.0}\n  config:\n    persistence: {retention_policy: 90d}")
BRIEF = CHAIN.replace("metadata: {id: chain, version: 1.0.0}",
                      "metadata: {id: brief, version: 1.0.0}\n  config:\n    persistence: {retention_policy: 12h}")


def ttls(runtime, run_id: str) -> tuple[int, set[int]]:
    """The run item's TTL, and the TTLs of its history entries (less the time of each: how long each is kept)."""
    db = boto3.client("dynamodb", region_name="us-east-1")
    run = db.get_item(TableName=runtime.stack.physical["RunsTable"], Key={"pk": {"S": run_id}, "sk": {"S": "RUN"}})
    items = db.query(TableName=runtime.stack.physical["HistoryTable"], KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": f"RUN#{run_id}"}})["Items"]
    now = int(runtime.clock.now().timestamp())  # the clock stands still: every time is this one
    return int(run["Item"]["ttl"]["N"]) - now, {int(i["ttl"]["N"]) - now for i in items}


def test_each_workflow_keeps_its_runs_and_history_for_its_own_retention(api, runtime):  # noqa: F811
    runs = {}
    for name, text in (("kept", KEPT), ("brief", BRIEF), ("chain", CHAIN)):
        status, started = call(api, "POST", "/runs", {"workflow": text})
        assert status == 201, started
        runs[name] = started["run_id"]
    for run_id in runs.values():
        assert ended(api, run_id)["status"] == "COMPLETED"
        history(api, run_id, "COMPLETED")
    assert ttls(runtime, runs["kept"]) == (90 * 86400, {90 * 86400})
    assert ttls(runtime, runs["brief"]) == (12 * 3600, {12 * 3600})
    assert ttls(runtime, runs["chain"]) == (30 * 86400, {30 * 86400})  # none given: the deployment's
