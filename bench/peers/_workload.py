"""What every engine script in bench/peers/ shares: its arguments, the timing, and the one JSON line.

Standard library only: this runs under loopline's venv and under the peers' venv alike.

    W1  chain of 10 no-op steps, each returning a small dict     runs/s over --runs sequential runs
    W2  fan-out 1 -> 8 -> 1 of the same steps                    runs/s over --runs sequential runs
    W3  map over --items items, one no-op step per item           items/s of one run

A run counts only once the engine reports it finished and successful; a warm-up run of each
workload comes first (imports, caches, table creation), untimed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

WORKLOADS = ("W1", "W2", "W3")
FAN_OUT = 8
CHAIN = 10


def step(value: int) -> dict[str, int]:
    """The no-op step of every engine: a small dict."""
    return {"n": value}


def parse(argv: list[str] | None = None, modes: tuple[str, ...] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--runs", type=int, default=20, help="W1/W2: sequential runs timed")
    parser.add_argument("--items", type=int, default=1000, help="W3: items in the map")
    parser.add_argument("--state", default="", help="a fresh directory for the engine's files")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (the default); cpu: this process's CPU time, all its threads "
                             "(steadier on a busy machine, but blind to waiting: a sleep costs nothing)")
    if modes:
        parser.add_argument("--mode", choices=modes, required=True)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, run: Callable[[int], None], engine: str, **extra: object) -> None:
    """``run(size)`` starts one run and returns once it has finished successfully (raising otherwise):
    size is the map's items for W3, else unused. Prints the figures as one JSON line."""
    clock = time.process_time if getattr(args, "clock", "wall") == "cpu" else time.perf_counter
    if args.workload == "W3":
        run(min(args.items, 10))  # warm-up
        started = clock()
        run(args.items)
        seconds = clock() - started
        figures = {"rate": args.items / seconds, "unit": "items/s", "count": args.items}
    else:
        run(0)
        started = clock()
        for _ in range(args.runs):
            run(0)
        seconds = clock() - started
        figures = {"rate": args.runs / seconds, "unit": "runs/s", "count": args.runs}
    if clock is time.process_time:
        figures["clock"] = "cpu"  # seconds of CPU, and the rate per CPU second
    print(json.dumps({"engine": engine, "workload": args.workload, "seconds": seconds, **figures, **extra}))


def version(distribution: str) -> str:
    from importlib.metadata import version as installed

    return installed(distribution)


def skip(engine: str, workload: str, reason: str) -> None:
    """A peer that cannot run says why, and gives no figure."""
    print(json.dumps({"engine": engine, "workload": workload, "skipped": reason}))
    sys.exit(0)
