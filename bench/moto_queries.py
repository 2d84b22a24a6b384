"""What a Query of one run's partition costs on moto as the table grows, with and without moto_queries.py.

moto 5 answers a table Query by sorting every item of the table (loopline/embedded/moto_queries.py), so
its time grew with every run a process had made. This fills a table keyed as the runs table with
``--items-per-run`` items per run, and at each size times the engine's kind of Query (a span of one
run's task keys, strongly consistent), in two processes: moto as it is, and moto with the speedup
(each speedup stays installed for the life of its process).

    .venv/bin/python bench/moto_queries.py [--sizes 10,100,1000] [--items-per-run 12] [--rounds 20]
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


def measure(sizes: list[int], per_run: int, rounds: int, speedup: bool) -> dict[int, float]:
    """Median ms of a Query of one partition's span, at each number of runs in the table."""
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"})
    import boto3
    from moto import mock_aws

    medians: dict[int, float] = {}
    with mock_aws():
        if speedup:
            from loopline.embedded.moto_queries import install_query_speedups

            install_query_speedups()
        db = boto3.client("dynamodb")
        db.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
        runs = 0
        for size in sizes:
            for run in range(runs, size):
                for i in range(per_run):
                    db.put_item(TableName="runs", Item={"pk": {"S": f"run-{run}"}, "sk": {"S": f"T#t{i:02d}"},
                                                        "status": {"S": "COMPLETED"}})
            runs = max(runs, size)
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                db.query(TableName="runs", ConsistentRead=True,
                         KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                         ExpressionAttributeValues={":p": {"S": "run-3"}, ":a": {"S": "T#t02"}, ":b": {"S": "T#t09"}})
                times.append((time.perf_counter() - started) * 1000)
            medians[size] = statistics.median(times)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of runs in the table, comma-separated")
    parser.add_argument("--items-per-run", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--child", choices=("moto", "speedup"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.child:
        print(json.dumps(measure(sizes, args.items_per_run, args.rounds, args.child == "speedup")))
        return 0
    print(f"$ .venv/bin/python bench/moto_queries.py --sizes {args.sizes} --items-per-run {args.items_per_run} "
          f"--rounds {args.rounds}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()[0]:.2f}")
    figures = {}
    for child in ("moto", "speedup"):
        done = subprocess.run([sys.executable, __file__, "--child", child, "--sizes", args.sizes,
                               "--items-per-run", str(args.items_per_run), "--rounds", str(args.rounds)],
                              capture_output=True, text=True, check=True, timeout=1800)
        figures[child] = {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    print(f"{'runs in the table':>17} {'items':>7} {'moto ms/Query':>14} {'with moto_queries.py':>21} {'ratio':>7}")
    for size in sizes:
        before, after = figures["moto"][size], figures["speedup"][size]
        print(f"{size:>17} {size * args.items_per_run:>7} {before:>14.2f} {after:>21.2f} {before / after:>6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
