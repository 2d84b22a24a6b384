"""What a Query of one run's partition costs on moto as the table grows, with and without moto_queries.py.

moto 5 answers a table Query by sorting every item of the table, then every item of the partition
(loopline/embedded/moto_queries.py), so its time grew with every run a process had made, and with the
items of the run asked. Two tables, in two processes each (moto as it is, and moto with the speedup:
each speedup stays installed for the life of its process), timing the engine's kind of Query (a span
of 10 of a run's keys, strongly consistent):

* ``--sizes``: a table of that many runs of ``--items-per-run`` items each, the span in one of them;
* ``--partition-sizes``: one run of that many items (a run after a for_each over as many items);
* and at each of ``--sizes``, the newest page of 50 runs of the status index (``GET /runs``).

    .venv/bin/python bench/moto_queries.py [--sizes 10,100,1000] [--items-per-run 12]
                                           [--partition-sizes 100,1000,5000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def measure(sizes: list[int], per_run: int, partition_sizes: list[int], rounds: int,
            speedup: bool) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """Median ms of a Query of a span of 10 keys at each number of runs in the table, then at each
    number of items in the run asked; and of a page of the status index at each number of runs."""
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"})
    import boto3
    from moto import mock_aws

    medians: dict[int, float] = {}
    in_partition: dict[int, float] = {}
    listed: dict[int, float] = {}
    with mock_aws():
        if speedup:
            from loopline.embedded.moto_queries import install_query_speedups

            install_query_speedups()
        db = boto3.client("dynamodb")
        for table in ("runs", "one"):  # "one": a table of one run, for the second measure
            db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                                  for a in ("pk", "sk", "status", "created_at")],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}],
                            GlobalSecondaryIndexes=[{  # as template.yaml's runs table: GET /runs by status
                                "IndexName": "ByStatus", "Projection": {"ProjectionType": "ALL"},
                                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                              {"AttributeName": "created_at", "KeyType": "RANGE"}]}])
        runs = 0
        for size in sizes:
            for run in range(runs, size):
                db.put_item(TableName="runs", Item={"pk": {"S": f"run-{run}"}, "sk": {"S": "RUN"},
                                                    "status": {"S": "COMPLETED"},
                                                    "created_at": {"S": f"2026-12-05T10:00:{run:06d}"}})
                for i in range(per_run - 1):
                    db.put_item(TableName="runs", Item={"pk": {"S": f"run-{run}"}, "sk": {"S": f"T#t{i:05d}"},
                                                        "status": {"S": "COMPLETED"}})
            runs = max(runs, size)
            medians[size] = _median_ms(db, "runs", "run-3", rounds)
            listed[size] = _median_ms(db, "runs", None, rounds)
        grown = 0
        for size in partition_sizes:
            for n in range(grown, size):
                db.put_item(TableName="one", Item={"pk": {"S": "one-run"}, "sk": {"S": f"T#t{n:05d}"},
                                                   "status": {"S": "COMPLETED"}})
            grown = max(grown, size)
            in_partition[size] = _median_ms(db, "one", "one-run", rounds)
    return medians, in_partition, listed


def _median_ms(db, table: str, run: str | None, rounds: int) -> float:
    """A span of 10 of ``run``'s keys; with no run, the newest page of 50 runs of the status index."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        if run is None:
            db.query(TableName=table, IndexName="ByStatus", KeyConditionExpression="#s = :s", Limit=50,
                     ScanIndexForward=False, ExpressionAttributeNames={"#s": "status"},
                     ExpressionAttributeValues={":s": {"S": "COMPLETED"}})
        else:
            db.query(TableName=table, ConsistentRead=True, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                     ExpressionAttributeValues={":p": {"S": run}, ":a": {"S": "T#t00002"}, ":b": {"S": "T#t00011"}})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of runs in the table, comma-separated")
    parser.add_argument("--items-per-run", type=int, default=12)
    parser.add_argument("--partition-sizes", default="100,1000,5000",
                        help="numbers of items in the one run asked, comma-separated")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--child", choices=("moto", "speedup"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    partition_sizes = sorted(int(s) for s in args.partition_sizes.split(","))
    options = ["--sizes", args.sizes, "--items-per-run", str(args.items_per_run),
               "--partition-sizes", args.partition_sizes, "--rounds", str(args.rounds)]
    if args.child:
        print(json.dumps(measure(sizes, args.items_per_run, partition_sizes, args.rounds, args.child == "speedup")))
        return 0
    print("$ .venv/bin/python bench/moto_queries.py " + " ".join(options))
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()[0]:.2f}")
    figures = {}
    for child in ("moto", "speedup"):
        done = subprocess.run([sys.executable, __file__, "--child", child, *options],
                              capture_output=True, text=True, check=True, timeout=1800)
        tables = json.loads(done.stdout.strip().splitlines()[-1])
        figures[child] = [{int(k): v for k, v in table.items()} for table in tables]
    print("\nA span of 10 keys of one run, as the table holds more runs")
    print(f"{'runs in the table':>17} {'items':>7} {'moto ms/Query':>14} {'with moto_queries.py':>21} {'ratio':>7}")
    for size in sizes:
        before, after = figures["moto"][0][size], figures["speedup"][0][size]
        print(f"{size:>17} {size * args.items_per_run:>7} {before:>14.2f} {after:>21.2f} {before / after:>6.1f}x")
    print("\nA page of 50 runs of the status index (GET /runs), as the table holds more runs")
    print(f"{'runs in the table':>17} {'items':>7} {'moto ms/Query':>14} {'with moto_queries.py':>21} {'ratio':>7}")
    for size in sizes:
        before, after = figures["moto"][2][size], figures["speedup"][2][size]
        print(f"{size:>17} {size * args.items_per_run:>7} {before:>14.2f} {after:>21.2f} {before / after:>6.1f}x")
    print("\nA span of 10 keys of one run, as that run holds more items")
    print(f"{'items in the run':>17} {'moto ms/Query':>14} {'with moto_queries.py':>21} {'ratio':>7}")
    for size in partition_sizes:
        before, after = figures["moto"][1][size], figures["speedup"][1][size]
        print(f"{size:>17} {before:>14.2f} {after:>21.2f} {before / after:>6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
