"""The run listing with 10,000 runs in the store: time of a page, and what DynamoDB read for it.

The runs are written straight into the embedded default's runs table (moto, provisioned from
template.yaml with its indexes) in the store's own item layout, 25 to a BatchWriteItem, then
read through ``DynamoRunQueries`` (what GET /runs and GET /runs/counts use) and, for comparison,
through the in-memory adapter. Each query is timed over ``--repeat`` calls (median), and the
DynamoDB requests and items it read are counted with a botocore hook: a page reads about a page
of index items per partition it asks, never the table.

    .venv/bin/python bench/runs_list.py [--runs 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STATUSES = [("COMPLETED", 70), ("FAILED", 15), ("RUNNING", 10), ("CANCELLED", 5)]


def make_runs(count: int, seed: int = 7) -> list:
    from infra.clock import iso
    from infra.ports import RunRecord

    rng = random.Random(seed)
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    names = [s for s, weight in STATUSES for _ in range(weight)]
    runs = []
    for i in range(count):
        created = start + timedelta(seconds=i * 86.4)  # 10,000 runs over 10 days
        status = rng.choice(names)
        runs.append(RunRecord(run_id=f"run-{i:05d}", plan_hash="bench", workflow_id=f"wf{i % 10}", status=status,
                              created_at=iso(created),
                              ended_at=None if status == "RUNNING" else iso(created + timedelta(seconds=30))))
    return runs


class Counter:
    """DynamoDB requests and the items they read (ScannedCount), from a botocore hook."""

    def __init__(self, client) -> None:
        self.requests = 0
        self.items = 0
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    def _after(self, parsed, **_) -> None:
        self.requests += 1
        self.items += parsed.get("ScannedCount", 0)

    def reset(self) -> None:
        self.requests = self.items = 0


def timed(call, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, result


LOOP = """
workflow:
  metadata: {id: bench_loop, name: Loop}
  inputs:
    schema: {type: object, properties: {items: {type: array}}}
  control_flow:
    loops:
      - id: each
        type: for_each
        items: "${inputs.items}"
        iterator: item
        max_iterations: 100000
        tasks:
          - {id: step, type: wait, config: {duration: 0s}}
"""


def iterations(aws, client, table: str, count: int, repeat: int) -> None:
    """A page of a loop's iterations with ``count`` of them stored (as a finished loop leaves them)."""
    from infra.aws.claims import JsonAttributes
    from infra.aws.dynamo_items import TASK, run_item, task_sk
    from infra.aws.dynamo_store import DynamoStore
    from infra.engine.keys import body_key, iteration_key
    from infra.engine.plans import Plans
    from infra.engine.run_listing import RunListing
    from infra.ports import RunRecord, TaskChange, TaskRecord
    from loopline.memory.listing import InMemoryRunQueries
    from loopline.memory.store import InMemoryStore
    from statemachine.compiler import compile_workflow

    plan = compile_workflow(LOOP, "bench_loop.yaml")
    codec = JsonAttributes(None)
    run = RunRecord("loop-run", plan.hash, plan.workflow_id, status="COMPLETED", created_at="2030-02-01T00:00:00.000Z")
    recs = [TaskRecord("each", status="COMPLETED", attempt=1, loop_state={"total": count})]
    for i in range(count):
        recs.append(TaskRecord(iteration_key("each", i), status="COMPLETED", attempt=1, output={"i": i},
                               started_at="2030-02-01T00:00:00.000Z", ended_at="2030-02-01T00:00:01.000Z"))
        recs.append(TaskRecord(body_key("step", "each", i), status="COMPLETED", attempt=1))
    began = time.perf_counter()
    items = [run_item(codec, run)] + [{"pk": {"S": run.run_id}, "sk": {"S": task_sk(r.task_id)}, **TASK.item(codec, r)}
                                      for r in recs]
    for at in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in items[at:at + 25]]})
    memory = InMemoryStore()
    memory.create_run(run)
    for r in recs:  # the items as a finished loop leaves them
        fields = {k: getattr(r, k) for k in ("attempt", "output", "started_at", "ended_at", "loop_state")}
        memory.change_task(run.run_id, r.task_id, TaskChange(status=r.status, from_status=(None,),
                                                             set={k: v for k, v in fields.items() if v}))
    print(f"\nwrote a loop of {count:,} iterations ({len(items):,} items) in {time.perf_counter() - began:.1f} s")
    dynamo = DynamoStore(client, table, aws.stack.physical["DefinitionsTable"], aws.stack.physical["TokensTable"])
    batches = {"n": 0, "keys": 0}

    def counted(params, **_) -> None:
        batches["n"] += 1
        batches["keys"] += sum(len(v["Keys"]) for v in params["RequestItems"].values())

    client.meta.events.register("before-parameter-build.dynamodb.BatchGetItem", counted)
    print(f"{'iterations page (limit 50)':<38} {'adapter':<16} {'median ms':>10} {'batches':>9} {'keys read':>11}")
    for store, name in ((dynamo, "dynamodb (moto)"), (memory, "memory")):
        store.put_plan(plan.hash, plan.to_json())
        listing = RunListing(store, InMemoryRunQueries(memory), Plans(store))
        for start in (0, count // 2, count - 50):
            ms, page = timed(lambda: listing.iterations(run.run_id, "each", start, 50), repeat)
            batches.update(n=0, keys=0)
            listing.iterations(run.run_id, "each", start, 50)
            assert page is not None and [i["index"] for i in page["iterations"]] == list(range(start, start + 50))
            reads = f"{batches['n']:>9} {batches['keys']:>11}" if store is dynamo else f"{'-':>9} {'-':>11}"
            print(f"{'from index ' + format(start, ','):<38} {name:<16} {ms:>10.1f} {reads}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10_000, help="the loop's length")
    args = parser.parse_args()
    print("$ " + " ".join([Path(sys.executable).name, "bench/runs_list.py", f"--runs {args.runs}",
                           f"--repeat {args.repeat}", f"--iterations {args.iterations}"]), flush=True)

    from infra.aws.claims import JsonAttributes
    from infra.aws.dynamo_items import run_item
    from infra.aws.dynamo_listing import DynamoRunQueries
    from infra.listing import RunQuery
    from loopline.embedded.runtime import EmbeddedAws
    from loopline.memory.listing import InMemoryRunQueries
    from loopline.memory.store import InMemoryStore
    from statemachine.status import RunStatus

    aws = EmbeddedAws()
    try:
        client = aws.client("dynamodb")
        table = aws.stack.physical["RunsTable"]
        runs = make_runs(args.runs)
        began = time.perf_counter()
        codec = JsonAttributes(None)
        for at in range(0, len(runs), 25):
            client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": run_item(codec, run)}}
                                                          for run in runs[at:at + 25]]})
        print(f"wrote {len(runs):,} runs in {time.perf_counter() - began:.1f} s")
        memory = InMemoryStore()
        for run in runs:
            memory.create_run(run)
        stores = {"dynamodb (moto)": DynamoRunQueries(client, table), "memory": InMemoryRunQueries(memory)}
        counter = Counter(client)

        def deep(queries):  # page 10 of 50: nine cursors followed first
            query = RunQuery(limit=50)
            for _ in range(9):
                page = queries.list_runs(query)
                query = RunQuery(limit=50, after=page.runs[-1].position)
            return queries.list_runs(query)

        cases = [
            ("first page, no filter (limit 50)", lambda q: q.list_runs(RunQuery(limit=50))),
            ("status=FAILED (limit 50)", lambda q: q.list_runs(RunQuery(status=RunStatus.FAILED, limit=50))),
            ("workflow=wf3 (limit 50)", lambda q: q.list_runs(RunQuery(workflow_id="wf3", limit=50))),
            ("workflow=wf3&status=CANCELLED", lambda q: q.list_runs(RunQuery(status=RunStatus.CANCELLED,
                                                                             workflow_id="wf3", limit=50))),
            ("one day (since/until, limit 200)", lambda q: q.list_runs(RunQuery(
                since="2030-01-05T00:00:00.000Z", until="2030-01-06T00:00:00.000Z", limit=200))),
            ("page 10 through cursors (10 calls)", deep),
            ("counts, all workflows", lambda q: q.count_runs()),
            ("counts, workflow=wf3", lambda q: q.count_runs("wf3")),
            ("counts, one day", lambda q: q.count_runs(since="2030-01-05T00:00:00.000Z",
                                                       until="2030-01-06T00:00:00.000Z")),
        ]
        print(f"\n{'query':<38} {'adapter':<16} {'median ms':>10} {'requests':>9} {'items read':>11} {'shown':>6}")
        for name, call in cases:
            for adapter, queries in stores.items():
                ms, result = timed(lambda: call(queries), args.repeat)
                counter.reset()
                call(queries)
                shown = len(result.runs) if hasattr(result, "runs") else sum(result.values())
                reads = (f"{counter.requests:>9} {counter.items:>11}" if adapter.startswith("dynamo")
                         else f"{'-':>9} {'-':>11}")
                print(f"{name:<38} {adapter:<16} {ms:>10.1f} {reads} {shown:>6}")
        print("\n'items read': index items DynamoDB read (ScannedCount); the table holds "
              f"{len(runs):,} runs. Counts read every index key of the partitions they count.")
        iterations(aws, client, table, args.iterations, args.repeat)
    finally:
        aws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
