"""Interleaving enumeration (issue #5 item 2): every message of a run delivered twice at once, the second
delivery running to its end after each AWS call of the first in turn.

    .venv/bin/python bench/interleavings.py                # every reference workflow of crash_points.py
    .venv/bin/python bench/interleavings.py --only chain   # one of them

moto is made linearizable per request, as DynamoDB and SQS are (tests/concurrency.py). For each
reference workflow of bench/crash_points.py: a clean run, driven one message at a time (approvals
approved, timers fired, the clock moved when nothing else is left), gives its messages. Then for
its message i and every k from 0 (the second delivery wholly first) to the AWS calls the first
delivery makes alone: a new run is driven to its message i, which two workers get at once; the
first stops right after its k-th AWS call, the second runs to its end, the first goes on; then
the run is driven to its end. It must equal the clean run (status, outputs, every task's status,
output and attempts) with every task's action run as often. Prints how many interleavings were
tried and how many passed (like crash_points.py, which crashes where this pauses).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crash_points import RewindPlan

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ENDED = ("COMPLETED", "FAILED", "CANCELLED")


def drive(bench, run_id: str, twice_at: int | None = None, pause_after: int | None = None,
          timeout: float = 60.0, rewind: RewindPlan | None = None) -> tuple[dict, int, int]:
    """Drive the run to its end one message at a time; its message number ``twice_at`` (from 1) is
    delivered twice at once, interleaved at ``pause_after``. Returns the final view, the number of
    the run's messages, and the AWS calls of the first delivery of message ``twice_at``. ``rewind``:
    once ended, the run is rewound so (crash_points.REWINDS) and driven to its end again."""
    from crash_points import rewind_due, rewind_options, rewound
    from migration_scenario import MigrateFirst

    from infra.wiring import get_engine
    from tests.concurrency import interleave
    from tests.e2e.concurrent_runs import post_decision, run_of

    seen = calls = 0
    migration = MigrateFirst() if bench.view(run_id)["workflow_id"] == "migration" else None
    asked = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bench.status(run_id) in ENDED:
            view = bench.view(run_id)
            if rewound(view, rewind, asked):
                return view, seen, calls
            if rewind and not asked:
                get_engine().rewind_run(run_id, rewind.to, **rewind_options(rewind))
                asked = True
        elif rewind_due(bench.view(run_id), rewind, asked):
            get_engine().rewind_run(run_id, rewind.to, **rewind_options(rewind))  # a moving run's, while it waits
            asked = True
        messages = bench.lambdas.receive(1)
        if not messages:
            if bench.runtime.fire_due_timers():
                continue
            view = bench.view(run_id)
            if migration is not None and migration.holds(get_engine(), run_id, view, lambda work: work()):
                continue  # its migrate message is next; the approval is decided on the new version
            approvals = view["approvals"]
            for entry in approvals:
                post_decision(bench, entry["url"].rsplit("/", 1)[1], "APPROVED")
            if not approvals:
                bench.clock.advance(3 * 3600)  # timers, retries and leases come due
            continue
        if run_of(json.loads(messages[0]["Body"])) != run_id:
            bench.lambdas.deliver(messages[0])  # something of an earlier run
            continue
        seen += 1
        if seen != twice_at:
            bench.lambdas.deliver(messages[0])
            continue
        first, second, _ = interleave(bench.point, lambda: bench.lambdas.deliver(messages[0]),
                                      lambda: bench.lambdas.deliver(messages[0]), pause_after)
        first.get(), second.get()
        calls = bench.point.calls
    from crash_points import NotEnded

    raise NotEnded(run_id, bench.view(run_id))


def enumerate_workflow(bench, text: str, rewind: RewindPlan | None = None,
                       span: tuple[int, int] | None = None) -> tuple[int, int, int, list[dict]]:
    """(messages, interleavings tried, passed, failures) for one workflow (``span``: only the interleavings of
    its messages from the first to the last given, counted from 1: every run stays in the one emulated AWS
    of the process, which grows with them, so a long enumeration is made in a few processes)."""
    from crash_points import NotEnded

    from tests.e2e.concurrent_runs import summary

    clean_id = bench.start(text)
    clean_view, messages, _ = drive(bench, clean_id, rewind=rewind)
    clean = summary(clean_view), bench.actions(clean_id)
    tried = passed = 0
    failures: list[dict] = []
    first, last = span or (1, messages)
    for index in range(max(first, 1), min(last, messages) + 1):
        at = None
        first_calls = None
        while True:
            bench.lambdas.errors.clear()
            run_id = bench.start(text)
            try:
                view, _, calls = drive(bench, run_id, twice_at=index, pause_after=at, rewind=rewind)
                got = summary(view), bench.actions(run_id)
            except NotEnded as stuck:  # reported as where it stood, like any other failure
                view, calls = stuck.view or {"status": None, "outputs": None, "tasks": {}}, bench.point.calls
                got = (*summary(view)[:2], {**summary(view)[2], "(did not end)": True}), bench.actions(run_id)
            tried += 1
            if got == clean and not bench.lambdas.errors:
                passed += 1
            else:
                failures.append({"message": index, "second_after_call": at, "clean": _named(clean), "got": _named(got),
                                 "errors": [e[-300:] for e in bench.lambdas.errors]})
            if first_calls is None:
                first_calls, at = calls, 0
            else:
                at += 1
            if at >= first_calls:  # after the last call is the same as the first wholly first
                break
    return messages, tried, passed, failures


def _named(run: tuple) -> dict:
    """A run's summary and actions (enumerate_workflow) by name, for the report: JSON, compared by key."""
    (status, outputs, tasks), actions = run
    return json.loads(json.dumps({"status": status, "outputs": outputs, "tasks": tasks, "actions": actions},
                                 default=repr))


def main() -> int:
    from crash_points import REWINDS, WORKFLOWS, _span, difference

    from tests.e2e.concurrent_runs import own_bench

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKFLOWS))
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument("--full", action="store_true",
                        help="print each failure's clean and interleaved runs whole, not only where they differ")
    parser.add_argument("--messages", metavar="FIRST-LAST", type=_span,
                        help="only the interleavings of these messages of each run (counted from 1)")
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", file=sys.stderr)
    totals, failures = {"tried": 0, "passed": 0}, []
    with own_bench() as bench:
        for name, text in WORKFLOWS.items():
            if args.only and name != args.only:
                continue
            messages, tried, passed, failed = enumerate_workflow(bench, text, REWINDS.get(name), args.messages)
            totals["tried"] += tried
            totals["passed"] += passed
            failures += [{"workflow": name, **f} for f in failed]
            print(f"{name:<13} {messages:>3} messages  {tried:>4} interleavings  {passed:>4} passed", file=sys.stderr)
    print(f"total: {totals['tried']} interleavings tried, {totals['passed']} passed", file=sys.stderr)
    for failure in failures[:10]:
        if not args.full:  # where the run differs from the clean one, whole; the rest left out
            failure = {**{k: v for k, v in failure.items() if k not in ("clean", "got")},
                       "differs": difference(failure["clean"], failure["got"])}
        print(json.dumps(failure), file=sys.stderr)
    if args.json:
        print(json.dumps({**totals, "failures": failures[:20]}))
    return 0 if totals["tried"] == totals["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
