"""The S3 claim check on the embedded default: 5 MB values flow through a run, past
DynamoDB's 400 KB item and SQS's 256 KB message, with nothing large in either."""

from __future__ import annotations

import json

from tests.component.test_handlers import api
from tests.conftest import ROOT, api_event
from tests.e2e.test_invariants import finish, view

FIVE_MB = 5 * 1000 * 1000

BIG = (ROOT / "bench" / "workflows" / "big_payload.yaml").read_text()


def _items(aws) -> list[dict]:
    ddb = aws.client("dynamodb")
    items, kwargs = [], {"TableName": aws.stack.physical["RunsTable"]}
    while True:
        reply = ddb.scan(**kwargs)
        items += reply["Items"]
        if "LastEvaluatedKey" not in reply:
            return items
        kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]


def test_a_5_mb_input_and_output_flow_through_a_run(aws, runtime):
    # moto refuses an SQS body over 256 KB as SQS does, so the run only starts if the start
    # message (which carries the input) went through the claim check.
    status, body = api(runtime, api_event("api_post_runs.json", body={
        "workflow": BIG, "input": {"blob": "x" * FIVE_MB}}))
    assert status == 201, body
    done = finish(runtime, body["run_id"], timeout=120)

    assert done["status"] == "COMPLETED", done.get("error")
    assert done["outputs"]["total"] == 2 * FIVE_MB
    assert done["outputs"]["echo"] == "y" * FIVE_MB
    assert len(done["tasks"]["make"]["output"]["blob"]) == FIVE_MB

    # Nothing large was stored in DynamoDB: the values are claims on S3 objects.
    items = _items(aws)
    assert items and max(len(json.dumps(item)) for item in items) < 64 * 1024
    claims = [value["M"]["claim"]["S"] for item in items for value in item.values() if "M" in value
              and "claim" in value["M"]]
    assert len(claims) >= 3  # the input, the make output, the run's outputs
    objects = aws.client("s3").list_objects_v2(Bucket=aws.stack.physical["PayloadBucket"])["Contents"]
    assert {o["Key"].removeprefix("payloads/") for o in objects} >= set(claims)
    assert max(o["Size"] for o in objects) > FIVE_MB
    # HistoryFunction labels the tasks' metrics from the run, whose input is a claim: its role reads payloads/.
    assert 'task_type="python",workflow="big_payload"' in _labelled_metrics(runtime)


def test_a_large_value_reads_back_the_same_after_a_restart(aws, runtime, clock):
    """A new process (empty payload cache) reads every claim back from S3."""
    from loopline.embedded.runtime import LocalRuntime

    status, body = api(runtime, api_event("api_post_runs.json", body={
        "workflow": BIG, "input": {"blob": "é" * 100_000}}))
    assert status == 201, body
    first = finish(runtime, body["run_id"], timeout=120)
    runtime.stop()
    fresh = LocalRuntime(aws, clock=clock)
    try:
        again = view(fresh, body["run_id"])
    finally:
        fresh.stop()
    assert again == first
    assert again["tasks"]["make"]["output"]["seen"] == 100_000


# A plan over DynamoDB's 400 KB item: one task and a 420 KB description is the smallest such
# workflow (bench/large_payloads.py --plans runs the 900- and 2,000-task chains the same way).
LARGE_PLAN = ("workflow:\n  metadata:\n    id: large_plan\n    version: 1.0.0\n    description: "
              + "d" * 420_000 + "\n  tasks:\n    - {id: only, type: wait, config: {duration: 0s}}\n")


def _labelled_metrics(runtime) -> str:
    """The metrics registry's text once the runs table's stream is delivered to HistoryFunction."""
    while runtime.streams.poll_once():
        pass
    return runtime.metrics.render()


def _post_workflows(runtime, text):
    event = api_event("api_post_runs.json", body={"workflow": text})
    event["resource"] = event["path"] = event["requestContext"]["resourcePath"] = "/workflows"
    event["requestContext"]["path"] = "/Prod/workflows"
    return api(runtime, event)


def test_a_plan_larger_than_a_dynamodb_item_registers_and_runs(aws, runtime):
    status, registered = _post_workflows(runtime, LARGE_PLAN)
    assert status == 201, registered
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": "large_plan", "input": {}}))
    assert status == 201, body
    assert finish(runtime, body["run_id"], timeout=60)["status"] == "COMPLETED"
    status, body = api(runtime, api_event("api_post_runs.json", body={"workflow": LARGE_PLAN, "input": {}}))
    assert status == 201, body
    assert finish(runtime, body["run_id"], timeout=60)["status"] == "COMPLETED"

    # The definitions item holds a claim on the plan, not the plan.
    items = aws.client("dynamodb").scan(TableName=aws.stack.physical["DefinitionsTable"])["Items"]
    plan_item = next(i for i in items if i["pk"]["S"] == f"PLAN#{registered['hash']}")
    assert "claim" in plan_item["body"]["M"] and int(plan_item["body"]["M"]["bytes"]["N"]) > 420_000
    assert max(len(json.dumps(i)) for i in items) < 4096
    # HistoryFunction labels the task's metrics from the plan, a claim: its role reads payloads/.
    assert 'task_type="wait",workflow="large_plan"' in _labelled_metrics(runtime)
