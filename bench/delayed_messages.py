"""What a queue's delayed messages cost every SQS request on moto, with and without moto_speedups.py.

Each code task leaves its watchdog, an exec message delayed for the task's timeout + 90 s, in the
ready queue of the embedded default (infra/engine/code_tasks.py), so a busy stack's queue holds
hundreds of them. For N delayed messages in a queue (N = 0, 500, 2,000), this times an empty
ReceiveMessage and a cycle of SendMessage + ReceiveMessage + DeleteMessageBatch of one message (what
the engine and the pump do per transition), each ``--calls`` times, in one child process with
loopline/embedded/moto_speedups.py installed and in one without, alternating ``--rounds`` times.

    .venv/bin/python bench/delayed_messages.py [--rounds 2] [--calls 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (0, 500, 2000)


def measure(speedups: bool, calls: int) -> None:
    """In this process: one line per size."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    if speedups:
        from loopline.embedded.moto_speedups import install_sqs_speedups

        install_sqs_speedups()
    import boto3
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs")
        for size in SIZES:
            url = sqs.create_queue(QueueName=f"delayed-{size}")["QueueUrl"]
            for _ in range(size // 10):
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "MessageBody": "watchdog", "DelaySeconds": 900} for i in range(10)])
            started = time.perf_counter()
            for _ in range(calls):
                sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0)
            empty = (time.perf_counter() - started) / calls * 1000
            started = time.perf_counter()
            for _ in range(calls):
                sqs.send_message(QueueUrl=url, MessageBody="exec")
                message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                              WaitTimeSeconds=0)["Messages"][0]
                sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}])
            cycle = (time.perf_counter() - started) / calls * 1000
            label = "with" if speedups else "without"
            print(f"{label:<8} {size:>5}  {empty:>17.2f}  {cycle:>24.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="child processes per variant, alternating (default 2)")
    parser.add_argument("--calls", type=int, default=30, help="timed calls (or cycles) per figure (default 30)")
    parser.add_argument("--child", choices=("with", "without"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure(args.child == "with", args.calls)
        return 0
    shown = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable
    print("$ " + " ".join(shlex.quote(a) for a in [shown, *sys.argv]))
    import moto

    print(f"# moto {moto.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs; load average"
          f" at start {' '.join(f'{x:.2f}' for x in os.getloadavg())} (wall-clock: other work shows in it)")
    print("speedups  delayed  empty receive (ms)  send+receive+delete (ms)")
    for _ in range(args.rounds):
        for variant in ("without", "with"):  # each in a fresh process: the speedups are process-wide
            code = subprocess.call([sys.executable, str(Path(__file__).resolve()), "--child", variant,
                                    "--calls", str(args.calls)])
            if code:
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
