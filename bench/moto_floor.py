"""The floor of a durable chain on the embedded default: its conditional writes alone, no engine.

Issue #12 item 4 asks the embedded default to run a chain of 10 steps no slower than Step Functions
on moto. moto executes a state machine's Pass states in-process and keeps nothing per state but its
own history list; the embedded default keeps each step's checkpoint in emulated DynamoDB, one
conditional write per step (docs/durability.md rules 11 and 12). This prints what those 10 writes
cost by themselves, through boto3 and moto as the engine makes them (the embedded default's moto
speedups and unsigned requests installed, on the stack's runs table), with nothing else of a run:
no start, no queue, no stream, no history, no engine. A chain cannot be faster than its floor.

* ``put``:    10 PutItems under ``attribute_not_exists(sk)``, each a ~450-byte task item (a carried
              task's first write: its claim, or its claim and end in one, infra/aws/dynamo_items.py task_put)
* ``update``: 10 UpdateItems of 13 SETs and 2 REMOVEs under a status condition (the shape of a write
              to a task that has an item: a claim after an edge was counted, a finish)

    .venv/bin/python bench/moto_floor.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STEPS = 10
FIELDS = 13


def _task_item(run: str, step: int) -> dict:
    return {"pk": {"S": run}, "sk": {"S": f"T#step{step}"}, "status": {"S": "COMPLETED"},
            "attempt": {"N": "1"}, "output": {"M": {"woke_at": {"S": "2026-12-05T11:00:00.000000+00:00"}}},
            **{f"field{j}": {"S": "x" * 24} for j in range(FIELDS)}}


def puts(db, table: str) -> None:
    run = f"floor-{uuid.uuid4().hex}"
    for step in range(STEPS):
        db.put_item(TableName=table, Item=_task_item(run, step), ConditionExpression="attribute_not_exists(sk)")


def updates(db, table: str) -> None:
    run = f"floor-{uuid.uuid4().hex}"
    names = {**{f"#f{j}": f"field{j}" for j in range(FIELDS)}, "#r0": "gone0", "#r1": "gone1", "#st": "status"}
    values = {**{f":f{j}": {"S": "y" * 24} for j in range(FIELDS)}, ":pending": {"S": "PENDING"}}
    expression = "SET " + ", ".join(f"#f{j} = :f{j}" for j in range(FIELDS)) + " REMOVE #r0, #r1"
    for step in range(STEPS):
        db.update_item(TableName=table, Key={"pk": {"S": run}, "sk": {"S": f"T#step{step}"}},
                       UpdateExpression=expression, ConditionExpression="attribute_not_exists(#st) OR #st = :pending",
                       ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed chains of 10 writes per kind (after 3 warm-ups)")
    args = parser.parse_args(argv)
    from loopline.embedded.account import EmbeddedAws

    aws = EmbeddedAws()
    try:
        db, table = aws.client("dynamodb"), aws.stack.physical["RunsTable"]
        print(f"$ .venv/bin/python bench/moto_floor.py --rounds {args.rounds}")
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()[0]:.2f}")
        print(f"{'writes':<44} {'median ms per 10':>16} {'range':>13} {'at most, chains/s':>18}")
        for label, chain in ((f"{STEPS} conditional PutItems (a first write)", puts),
                             (f"{STEPS} conditional UpdateItems ({FIELDS} SET, 2 REMOVE)", updates)):
            for _ in range(3):
                chain(db, table)
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                chain(db, table)
                times.append((time.perf_counter() - started) * 1000)
            median = statistics.median(times)
            print(f"{label:<44} {median:>16.2f} {min(times):>6.2f}-{max(times):<6.2f} {1000 / median:>18.0f}")
    finally:
        aws.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
