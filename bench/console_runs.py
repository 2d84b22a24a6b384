"""The console's runs list (GET /console) with 10,000 runs: the time to build the page, and what
DynamoDB read for it.

The runs (bench/runs_list.py's: 10 workflows, four statuses, over ten days) are written into a runs
table with template.yaml's indexes on moto (in-process), and into the in-memory store. The page is
built by the console's own code (functions/console/runs_pages.py: one listing query and the HTML;
the counts by status are a request of their own, ``?part=counts``) over ``--repeat`` calls, median;
DynamoDB's requests and the index items they read are counted with a botocore hook (the counts read
keys only: Select COUNT).

    .venv/bin/python bench/console_runs.py [--runs 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from runs_list import Counter, make_runs, timed  # noqa: E402  (bench/runs_list.py, beside this file)

DAY = {"since": "2030-01-05T00:00:00Z", "until": "2030-01-06T00:00:00Z"}
CASES = (("first page, no filter", {}), ("status=FAILED", {"status": "FAILED"}), ("workflow=wf3", {"workflow": "wf3"}),
         ("one day (since/until)", DAY),
         # The counts by status: a request of their own (?part=counts), loaded by the page's script.
         ("counts, all runs", {"part": "counts"}), ("counts, one day", {**DAY, "part": "counts"}))


def _shown(page: str) -> str:
    """The runs a page shows, or the total its counts name."""
    if 'id="total">' in page:
        return page.split('id="total">')[1].split("<")[0]
    return str(page.count("<tr data-run="))


def engine_over(store, queries):
    from infra.clock import ManualClock
    from infra.engine import Engine
    from infra.links import LinkSigner
    from infra.tasks.registry import TaskTypes
    from loopline.memory.queue import InMemoryQueue, InMemoryTimers

    clock = ManualClock()
    queue = InMemoryQueue(clock)
    return Engine(store, queue, InMemoryTimers(queue), LinkSigner(b"k" * 32), clock, task_types=TaskTypes.from_env({}),
                  queries=queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"$ python bench/console_runs.py --runs {args.runs} --repeat {args.repeat}", flush=True)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    import boto3
    from moto import mock_aws

    from functions.console.runs_pages import runs_page
    from infra.aws.claims import JsonAttributes
    from infra.aws.dynamo_items import run_item
    from infra.aws.dynamo_listing import DynamoRunQueries
    from infra.aws.dynamo_store import DynamoStore
    from loopline.memory.listing import InMemoryRunQueries
    from loopline.memory.store import InMemoryStore
    from tests.component.test_run_queries_contract import _runs_table

    runs = make_runs(args.runs)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _runs_table(client, "runs")
        began = time.perf_counter()
        codec = JsonAttributes(None)
        for at in range(0, len(runs), 25):
            client.batch_write_item(RequestItems={"runs": [{"PutRequest": {"Item": run_item(codec, run)}}
                                                           for run in runs[at:at + 25]]})
        print(f"wrote {len(runs):,} runs in {time.perf_counter() - began:.1f} s")
        memory = InMemoryStore()
        for run in runs:
            memory.create_run(run)
        counter = Counter(client)
        engines = {"dynamodb (moto)": engine_over(DynamoStore(client, "runs", "defs", "tokens"),
                                                  DynamoRunQueries(client, "runs")),
                   "memory": engine_over(memory, InMemoryRunQueries(memory))}
        print(f"\n{'GET /console':<26} {'adapter':<16} {'median ms':>10} {'requests':>9} {'items read':>11} "
              f"{'shown':>6}")
        for name, params in CASES:
            for adapter, engine in engines.items():
                ms, page = timed(lambda: runs_page(engine, params, root="./", actor="bench"), args.repeat)
                counter.reset()
                runs_page(engine, params, root="./", actor="bench")
                reads = f"{counter.requests:>9} {counter.items:>11}" if adapter != "memory" else f"{'-':>9} {'-':>11}"
                print(f"{name:<26} {adapter:<16} {ms:>10.1f} {reads} {_shown(str(page)):>6}")
    print("\n(moto's index queries visit every item of the table, so its times grow with the table; "
          "DynamoDB's grow with what is read: the items column)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
