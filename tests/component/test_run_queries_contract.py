"""The RunQueries contract, run against every adapter: in memory, on SQLite and on DynamoDB (moto),
where the runs table is created with the indexes template.yaml declares, so the listing is held to
the deployed key schema. On both databases a statement that reads the runs table without an index
fails the test. Every case must list the same runs in the same order on all three."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

from infra.aws.dynamo_listing import DynamoRunQueries
from infra.aws.dynamo_store import DynamoStore
from infra.listing import RunQuery
from infra.ports import RunRecord, TaskChange
from loopline.memory.listing import InMemoryRunQueries
from loopline.memory.store import InMemoryStore
from loopline.sqlite.db import Database
from loopline.sqlite.listing import SQLiteRunQueries
from loopline.sqlite.store import SQLiteStore
from statemachine.status import RunStatus

REGION = "eu-west-1"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _runs_table(client, name: str) -> None:
    props = yaml_parse(TEMPLATE.read_text())["Resources"]["RunsTable"]["Properties"]
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=props["KeySchema"],
                        AttributeDefinitions=props["AttributeDefinitions"],
                        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    for name_ in ("defs", "tokens"):
        client.create_table(TableName=name_, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator:
    if request.param == "memory":
        store = InMemoryStore()
        yield store, InMemoryRunQueries(store)
        return
    if request.param == "sqlite":
        db = Database(tmp_path / "state.db")
        listing = Database(tmp_path / "state.db")  # the listing's own connection: each of its statements is checked
        statements: list[str] = []
        listing.connection().set_trace_callback(statements.append)
        yield SQLiteStore(db), SQLiteRunQueries(listing)
        listing.connection().set_trace_callback(None)
        _indexed_only(db, statements)
        listing.close()
        db.close()
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _runs_table(client, "runs")
        listing = boto3.client("dynamodb", region_name=REGION)
        listing.meta.events.register("before-parameter-build.dynamodb.Scan", _no_scan)
        listing.meta.events.register("before-parameter-build.dynamodb.Query", _index_only)
        yield DynamoStore(client, "runs", "defs", "tokens"), DynamoRunQueries(listing, "runs")


def _no_scan(**_) -> None:
    raise AssertionError("the run listing scanned the table")


def _indexed_only(db: Database, statements: list[str]) -> None:
    """Every statement the listing made reads the runs table through an index (SQLite's plan says
    "SCAN runs" for a full scan, "SEARCH" or "SCAN ... USING INDEX" otherwise)."""
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects, "the listing made no statement"
    for statement in selects:
        plan = [row[3] for row in db.connection().execute("EXPLAIN QUERY PLAN " + statement)]
        reads = [step for step in plan if " runs" in step]
        assert reads and all("INDEX" in step for step in reads), (statement, plan)


def _index_only(params, **_) -> None:
    assert params.get("IndexName") in ("ByStatus", "ByWorkflow"), "the run listing queried the table itself"


def _run(store, run_id: str, minute: int, workflow: str = "wf", second: int = 0, **fields) -> None:
    store.create_run(RunRecord(run_id=run_id, plan_hash="h", workflow_id=workflow,
                               created_at=f"2030-01-01T00:{minute:02d}:{second:02d}.000Z", **fields))


def _ids(page) -> list[str]:
    return [r.run_id for r in page.runs]


def _all_pages(queries, query: RunQuery) -> list[str]:
    seen: list[str] = []
    while True:
        page = queries.list_runs(query)
        seen += _ids(page)
        if not page.more:
            return seen
        query = RunQuery(query.status, query.workflow_id, query.since, query.until, query.limit,
                         after=page.runs[-1].position)


def test_newest_first_in_pages_that_neither_repeat_nor_skip(stores):
    store, queries = stores
    for i in range(7):
        _run(store, f"r{i}", minute=i)
    for tied in ("t-a", "t-b", "t-c"):  # same millisecond: ordered by run id, split across pages
        _run(store, tied, minute=3, second=30)
    first = queries.list_runs(RunQuery(limit=4))
    assert _ids(first) == ["r6", "r5", "r4", "t-c"] and first.more
    assert _all_pages(queries, RunQuery(limit=4)) == ["r6", "r5", "r4", "t-c", "t-b", "t-a", "r3", "r2", "r1", "r0"]
    assert _all_pages(queries, RunQuery(limit=1))[:5] == ["r6", "r5", "r4", "t-c", "t-b"]
    last = queries.list_runs(RunQuery(limit=100))
    assert len(last.runs) == 10 and not last.more


def test_filters_by_status_workflow_and_both(stores):
    store, queries = stores
    _run(store, "a1", 1, "alpha")
    _run(store, "b1", 2, "beta")
    _run(store, "a2", 3, "alpha")
    _run(store, "a3", 4, "alpha")
    store.finish_run("a1", RunStatus.COMPLETED, {"x": 1}, None, "2030-01-01T00:09:00.000Z")
    store.finish_run("b1", RunStatus.FAILED, None, {"type": "E", "message": "m"}, "2030-01-01T00:09:00.000Z")
    assert store.set_run_status("a3", RunStatus.PAUSED, RunStatus.RUNNING)
    assert _ids(queries.list_runs(RunQuery(status=RunStatus.COMPLETED))) == ["a1"]
    assert _ids(queries.list_runs(RunQuery(status=RunStatus.RUNNING))) == ["a2"]
    assert _ids(queries.list_runs(RunQuery(workflow_id="alpha"))) == ["a3", "a2", "a1"]
    assert _ids(queries.list_runs(RunQuery(workflow_id="alpha", status=RunStatus.PAUSED))) == ["a3"]
    assert _ids(queries.list_runs(RunQuery(workflow_id="beta", status=RunStatus.PAUSED))) == []
    assert _all_pages(queries, RunQuery(workflow_id="alpha", status=RunStatus.COMPLETED, limit=1)) == ["a1"]
    summary = queries.list_runs(RunQuery(status=RunStatus.FAILED)).runs[0]
    assert (summary.workflow_id, summary.status, summary.ended_at) == ("beta", "FAILED", "2030-01-01T00:09:00.000Z")


def test_time_window_since_inclusive_until_exclusive(stores):
    store, queries = stores
    for i in range(6):
        _run(store, f"r{i}", minute=i)
    window = RunQuery(since="2030-01-01T00:01:00.000Z", until="2030-01-01T00:04:00.000Z")
    assert _ids(queries.list_runs(window)) == ["r3", "r2", "r1"]
    assert _all_pages(queries, RunQuery(window.status, None, window.since, window.until, limit=2)) == ["r3", "r2", "r1"]
    assert _ids(queries.list_runs(RunQuery(status=RunStatus.RUNNING, since="2030-01-01T00:04:00.000Z"))) == ["r5", "r4"]
    assert _ids(queries.list_runs(RunQuery(since="2030-01-02T00:00:00.000Z", until="2030-01-01T00:00:00.000Z"))) == []


def test_counts_by_status_of_all_or_one_workflow(stores):
    store, queries = stores
    _run(store, "a1", 1, "alpha")
    _run(store, "a2", 2, "alpha")
    _run(store, "b1", 3, "beta")
    store.finish_run("a1", RunStatus.COMPLETED, None, None, "2030-01-01T00:09:00.000Z")
    everything = queries.count_runs()
    assert everything == {**{s.value: 0 for s in RunStatus}, "RUNNING": 2, "COMPLETED": 1}
    assert queries.count_runs("alpha") == {**{s.value: 0 for s in RunStatus}, "RUNNING": 1, "COMPLETED": 1}
    assert queries.count_runs("nobody") == {s.value: 0 for s in RunStatus}


def test_counts_of_a_time_window(stores):
    store, queries = stores
    for i in range(5):
        _run(store, f"r{i}", minute=i, workflow="alpha" if i % 2 else "beta")
    store.finish_run("r1", RunStatus.FAILED, None, None, "2030-01-01T00:09:00.000Z")
    since, until = "2030-01-01T00:01:00.000Z", "2030-01-01T00:04:00.000Z"  # r1..r3; r4 is on `until`: out
    assert queries.count_runs(since=since, until=until) == {**{s.value: 0 for s in RunStatus}, "RUNNING": 2,
                                                            "FAILED": 1}
    assert queries.count_runs("alpha", since=since, until=until) == {**{s.value: 0 for s in RunStatus},
                                                                     "RUNNING": 1, "FAILED": 1}
    assert sum(queries.count_runs(since=until, until=since).values()) == 0  # an empty window
    assert sum(queries.count_runs("alpha", since=until, until=since).values()) == 0


def test_task_items_are_never_listed_and_child_runs_are_with_their_parent(stores):
    store, queries = stores
    _run(store, "parent", 1)
    _run(store, "child", 2, "sub", parent={"run": "parent", "plan": "h", "task": "t", "key": "t", "attempt": 1})
    store.change_task("parent", "t", TaskChange(status="RUNNING", from_status=(None,), set={"attempt": 1}))
    page = queries.list_runs(RunQuery())
    assert _ids(page) == ["child", "parent"]
    assert page.runs[0].parent is not None and page.runs[0].parent["run"] == "parent"
    assert queries.count_runs()["RUNNING"] == 2
