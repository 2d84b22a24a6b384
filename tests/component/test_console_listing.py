"""The console's runs list reads one page through the indexes, whatever the number of runs: on DynamoDB
(moto, the runs table created with template.yaml's indexes) with a client that refuses to scan and to
query the table itself, a page of 50 reads at most a page (and one more run) of each status's index
partition; the counts by status, a request of their own, read keys only (Select COUNT).
bench/console_runs.py times both with 10,000 runs."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions.console.runs_pages import runs_page
from infra.aws.claims import JsonAttributes
from infra.aws.dynamo_items import run_item
from infra.aws.dynamo_listing import DynamoRunQueries
from infra.aws.dynamo_store import DynamoStore
from infra.clock import ManualClock
from infra.engine import Engine
from infra.links import LinkSigner
from infra.ports import RunRecord
from infra.tasks.registry import TaskTypes
from loopline.memory.queue import InMemoryQueue, InMemoryTimers
from statemachine.status import RunStatus
from tests.component.test_run_queries_contract import REGION, _index_only, _no_scan, _runs_table

RUNS = 1_200
STATUSES = list(RunStatus)


class Reads:
    """Every Query the listing's client makes: whether it counted, and the items it read."""

    def __init__(self, client) -> None:
        self.queries: list[tuple[bool, int]] = []
        self._counting = False
        client.meta.events.register("before-parameter-build.dynamodb.Query", self._before)
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    def _before(self, params, **_) -> None:
        self._counting = params.get("Select") == "COUNT"

    def _after(self, parsed, **_) -> None:
        self.queries.append((self._counting, parsed.get("ScannedCount", 0)))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Reads]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _runs_table(client, "runs")
        codec = JsonAttributes(None)
        runs = [RunRecord(run_id=f"run-{i:05d}", plan_hash="h", workflow_id=f"wf{i % 7}",
                          status=STATUSES[i % len(STATUSES)],
                          created_at=f"2030-01-{1 + i // 1000:02d}T00:{(i // 60) % 60:02d}:{i % 60:02d}.000Z")
                for i in range(RUNS)]
        for at in range(0, len(runs), 25):
            client.batch_write_item(RequestItems={"runs": [{"PutRequest": {"Item": run_item(codec, run)}}
                                                           for run in runs[at:at + 25]]})
        listing = boto3.client("dynamodb", region_name=REGION)
        listing.meta.events.register("before-parameter-build.dynamodb.Scan", _no_scan)
        listing.meta.events.register("before-parameter-build.dynamodb.Query", _index_only)
        reads = Reads(listing)
        clock = ManualClock()
        queue = InMemoryQueue(clock)
        yield Engine(DynamoStore(client, "runs", "defs", "tokens"), queue, InMemoryTimers(queue),
                     LinkSigner(b"k" * 32), clock, task_types=TaskTypes.from_env({}),
                     queries=DynamoRunQueries(listing, "runs")), reads


def test_a_page_of_fifty_reads_a_page_per_status_and_never_scans(engine):
    engine_, reads = engine
    page = runs_page(engine_, {}, root="./", actor="ada")
    assert page.count("<tr data-run=") == 50 and 'class="older"' in page
    assert 'data-run="run-01199"' in page  # the newest
    listed = [items for counting, items in reads.queries if not counting]
    assert len(listed) == len(reads.queries) == len(STATUSES)  # one query per status partition, merged; no count
    assert sum(listed) <= len(STATUSES) * 52, listed  # a page (and one more) of each: not the 1,200 runs


def test_the_counts_are_their_own_request_and_read_keys_only(engine):
    engine_, reads = engine
    counts = runs_page(engine_, {"part": "counts"}, root="./", actor="ada")
    assert f'id="total">{RUNS}<' in counts and "<tr data-run=" not in counts
    assert reads.queries and all(counting for counting, _ in reads.queries)  # Select COUNT: no item comes back


def test_a_filtered_older_page_reads_one_partition(engine):
    engine_, reads = engine
    first = runs_page(engine_, {"status": "FAILED"}, root="./", actor="ada")
    cursor = first.split('class="older" rel="next" href="')[1].split("cursor=")[1].split('"')[0]
    reads.queries.clear()
    older = runs_page(engine_, {"status": "FAILED", "cursor": cursor}, root="./", actor="ada")
    assert older.count("<tr data-run=") == 50
    listed = [items for counting, items in reads.queries if not counting]
    # One partition (FAILED's): the page and one more run, plus the run the cursor names (read again, dropped).
    assert sum(listed) <= 2 * 52, listed
