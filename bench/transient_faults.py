"""Transient faults (issue #5 item 3): throttling and 5xx on every AWS service, retried with backoff.

    .venv/bin/python bench/transient_faults.py                # every reference workflow, every scenario
    .venv/bin/python bench/transient_faults.py --only chain   # one workflow
    .venv/bin/python bench/transient_faults.py --json         # also the figures as one JSON object

For each reference workflow (bench/crash_points.py's, with a value large enough to go through S3):
one fault-free run on the embedded default, then one run per scenario after a cold start (new
engine, new clients), with faults injected through botocore (tests/faults.py) on the handlers'
and the runtime's clients alike:

* ``every3`` / ``every2``: the 1st, 4th, 7th... (1st, 3rd, 5th...) request of each service from
  the cold start on; botocore's standard retry is expected to absorb them all;
* ``burst10``: the first 10 DynamoDB requests after POST /runs, one more than the clients' 9
  attempts: the error reaches the engine and the SQS message comes back.

A run is correct when its status, outputs and every task's status, output and attempts equal the
fault-free run's, and the python actions ran as often as in it. Prints requests, faults and retries
per service, errors that reached a handler, redelivered messages and the backoff botocore asked
for (recorded, not slept). Exits 1 if a run is not correct.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICES = ("dynamodb", "sqs", "scheduler", "secrets-manager", "s3", "lambda")


def scenarios():
    from tests.faults import Burst, Every

    return {"every3": lambda: (Every(3), False), "every2": lambda: (Every(2), False),
            "burst10": lambda: (Burst("dynamodb", 10), True)}


def workflows() -> dict[str, str]:
    from bench.crash_points import WORKFLOWS  # large_payload goes through S3, so S3 is faulted too

    return WORKFLOWS


def measure(stack, injector, actions: list[str], text: str, plan, after_start: bool) -> dict:
    from tests.e2e.test_transient_faults import summary
    from tests.faults import never

    stack.cold_start()
    before = {name: Counter(getattr(injector, name)) for name in ("requests", "faults", "retries")}
    errors, receives, delays = len(stack.errors), len(stack.receive_counts), len(injector.delays)
    actions.clear()
    if after_start:
        injector.plan = never  # armed once POST /runs has answered
        done = stack.run(text, after_start=lambda: setattr(injector, "plan", plan))
    else:
        injector.plan = plan
        done = stack.run(text)
    figures = {name: dict(getattr(injector, name) - before[name]) for name in before}
    return {"summary": summary(done), "actions": sorted(actions), **figures,
            "handler_errors": len(stack.errors) - errors,
            "redelivered": sum(1 for n in stack.receive_counts[receives:] if n > 1),
            "backoff_s": round(sum(injector.delays[delays:]), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", file=sys.stderr)
    # A burst fails a worker invocation; Powertools' log_metrics then flushes an empty set and warns.
    warnings.filterwarnings("ignore", "No application metrics to publish")

    import boto3

    import infra.dispatch.runner as runner
    from infra.clock import ManualClock
    from infra.tasks.registry import TaskTypes
    from loopline.embedded.runtime import REGION, EmbeddedAws
    from tests.e2e.test_transient_faults import Stack, summary
    from tests.faults import FaultInjector, fast_backoff, never

    aws = EmbeddedAws(redelivery_seconds=1)
    boto3.setup_default_session(region_name=REGION)
    injector = FaultInjector()
    injector.attach(boto3.DEFAULT_SESSION.events)  # the handlers' clients (infra/wiring.py)
    injector.attach(aws.session.events)  # the runtime's pollers and timer pump
    actions: list[str] = []
    real_type, real_code = TaskTypes.run, runner.run_code

    def counting(types, node, *rest):  # a task that runs in the worker
        actions.append(node.id)
        return real_type(types, node, *rest)

    def counting_code(request, settings):  # a code task, in the task runner
        actions.append(request.task_id)
        return real_code(request, settings)

    TaskTypes.run, runner.run_code = counting, counting_code  # type: ignore[method-assign]
    rows, totals = [], Counter()
    with fast_backoff() as delays:
        injector.delays = delays
        stack = Stack(aws, ManualClock(), injector)

        for name, text in workflows().items():
            if args.only and name != args.only:
                continue
            stack.cold_start()
            injector.plan = never
            actions.clear()
            clean, clean_actions = summary(stack.run(text)), sorted(actions)
            for scenario, make in scenarios().items():
                plan, after_start = make()
                got = measure(stack, injector, actions, text, plan, after_start)
                correct = got["summary"] == clean and got["actions"] == clean_actions
                rows.append({"workflow": name, "scenario": scenario, "correct": correct,
                             **{k: v for k, v in got.items() if k not in ("summary", "actions")}})
                totals["runs"] += 1
                totals["correct"] += correct
                for key in ("requests", "faults", "retries"):
                    totals[key] += sum(got[key].values())
                totals["handler_errors"] += got["handler_errors"]
                totals["redelivered"] += got["redelivered"]
        stack.runtime.stop()

    header = f"{'workflow':<15}{'scenario':<9}{'requests':>9}{'faults':>7}{'retries':>8}  per service (faults/requests)"
    print(header, file=sys.stderr)
    for row in rows:
        per = "  ".join(f"{s}:{row['faults'].get(s, 0)}/{row['requests'].get(s, 0)}" for s in SERVICES
                        if row["requests"].get(s))
        print(f"{row['workflow']:<15}{row['scenario']:<9}{sum(row['requests'].values()):>9}"
              f"{sum(row['faults'].values()):>7}{sum(row['retries'].values()):>8}  {per}"
              f"  errors:{row['handler_errors']} redelivered:{row['redelivered']} backoff:{row['backoff_s']}s"
              f"  {'correct' if row['correct'] else 'WRONG'}", file=sys.stderr)
    print(f"total: {totals['runs']} faulted runs, {totals['correct']} correct; {totals['requests']} requests, "
          f"{totals['faults']} faults injected, {totals['retries']} retried by botocore, "
          f"{totals['handler_errors']} errors reached a handler, {totals['redelivered']} messages redelivered",
          file=sys.stderr)
    if args.json:
        print(json.dumps({"totals": dict(totals), "runs": rows}))
    return 0 if totals["runs"] == totals["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
