"""AWS API calls per task transition, by service and operation, on the embedded default.

Every AWS API call is counted with a botocore ``before-call`` hook registered on
the two sessions that make them: the boto3 default session (``boto3.client()``
in ``infra.wiring``: the handlers' engine) and ``EmbeddedAws.session`` (the
local runtime's own SQS/Scheduler clients). Each call is tagged by who made it,
with a thread-local tag the benchmark sets by wrapping the runtime's methods on
its instance (no engine code is changed):

* ``handler``   calls made inside ``LocalRuntime.invoke``: the worker Lambda's code.
                This is the figure "AWS API calls per task transition".
* ``api``       ``engine.start_run`` (on AWS: the API Lambda behind POST /runs).
* ``poller``    ``LocalRuntime.poll_once`` outside ``invoke``: what the Lambda SQS
                event source mapping does on AWS (ReceiveMessage, DeleteMessageBatch).
* ``scheduler`` ``LocalRuntime.fire_due_timers``: what EventBridge Scheduler does
                on AWS (here emulated by listing and reading schedules).
* ``history``   calls made inside HistoryFunction (the runs table's stream consumer, not the
                worker): per stream batch a BatchGetItem per 100 history entries and a BatchWriteItem
                per 25 new ones (docs/history.md), and a GetItem of a plan it has not read yet, to
                label task metrics (docs/metrics.md; a run's workflow and plan come from its own
                item's changes in the stream, not from a read).
* ``stream``    the DynamoDB stream event source mapping's reads (GetShardIterator, GetRecords),
                emulated by ``LocalRuntime.streams.poll_once``; after each run the benchmark
                drains the stream, so a run's history is counted with it. On moto the records
                are read off its backend (loopline/embedded/moto_streams.py), not by request: only
                a batch holding a binary value is a GetRecords.

The benchmark's own "is the run over yet?" reads are tagged ``observer`` and not
counted. Each workflow is run once untimed and uncounted first, so the plan is
cached and stored (a first run of a new plan adds one PutItem on the
definitions table and, on a cold worker, one GetItem for the plan), then
``--repeat`` times counted.

A transition is a task node that reached a final status (COMPLETED, SKIPPED,
FAILED, CANCELLED); conditions are nodes and count too.

    .venv/bin/python bench/transitions.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKFLOWS = ROOT / "bench" / "workflows"
TERMINAL_RUN = ("COMPLETED", "FAILED", "CANCELLED")
TERMINAL_TASK = ("COMPLETED", "SKIPPED", "FAILED", "CANCELLED")
SERVICES = ("dynamodb", "sqs", "scheduler", "lambda", "s3")

# (label, workflow file, clock): "system" = real time (timers <= 15 min are SQS
# DelaySeconds messages); "movable" = a ManualClock, with which the local
# runtime sends every timer through EventBridge Scheduler (the AWS path of
# waits longer than 15 minutes) and the benchmark moves the clock when idle.
CASES = (
    ("chain of 1 python task", "chain_1.yaml", "system"),
    ("chain of 10 python tasks", "chain_10.yaml", "system"),
    ("chain of 10, each exporting", "chain_10_exports.yaml", "system"),
    ("fan-out 1 -> 8 -> 1", "fanout_8.yaml", "system"),
    ("condition (2 branches + join)", "condition.yaml", "system"),
    ("wait 2s (SQS delay)", "wait.yaml", "system"),
    ("wait 2s (Scheduler timer)", "wait.yaml", "movable"),
    ("chain of 10 waits of 0s", "wait0_chain_10.yaml", "system"),
    ("fan-out 1 -> 8 -> 1 of 0s waits", "wait0_fanout_8.yaml", "system"),
    ("for_each of 100 items, a 0s wait each", "for_each_100.yaml", "system"),
)


# ------------------------------------------------------------------ counting


class CallCounter:
    """botocore before-call/after-call hooks; counts per (tag, service, operation)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.counts: collections.Counter = collections.Counter()
        self.empty_receives: collections.Counter = collections.Counter()
        self.rejected: collections.Counter = collections.Counter()  # answered with an error (e.g. a condition)
        self.enabled = False

    @property
    def tag(self) -> str:
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else "untagged"

    @contextlib.contextmanager
    def tagged(self, tag: str):
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(tag)
        try:
            yield
        finally:
            stack.pop()

    def wrap(self, func, tag: str):
        def wrapped(*args, **kwargs):
            with self.tagged(tag):
                return func(*args, **kwargs)
        return wrapped

    def register(self, session) -> None:
        """``session`` is a boto3 Session; its botocore event system reaches every client it creates."""
        session.events.register("before-call", self._before_call)
        session.events.register("after-call", self._after_call)

    def _before_call(self, model, **_):
        if self.enabled:
            self.counts[(self.tag, model.service_model.service_name, model.name)] += 1

    def _after_call(self, model, parsed=None, http_response=None, **_):
        if not self.enabled:
            return
        if model.name == "ReceiveMessage" and not (parsed or {}).get("Messages"):
            self.empty_receives[self.tag] += 1
        if http_response is not None and http_response.status_code >= 300:
            self.rejected[(self.tag, model.service_model.service_name, model.name)] += 1

    def take(self) -> tuple[collections.Counter, collections.Counter, collections.Counter]:
        taken = self.counts, self.empty_receives, self.rejected
        self.counts, self.empty_receives, self.rejected = (collections.Counter(), collections.Counter(),
                                                           collections.Counter())
        return taken


@dataclass
class Measured:
    label: str
    transitions: int
    statuses: dict[str, int]
    seconds: float
    # per run, averaged over the repeats: {(tag, service, op): calls}
    calls: dict[tuple[str, str, str], float] = field(default_factory=dict)
    empty_receives: dict[str, float] = field(default_factory=dict)
    rejected: dict[tuple[str, str, str], float] = field(default_factory=dict)
    varied: set[tuple[str, str, str]] = field(default_factory=set)



# ------------------------------------------------------------------ the stack


class Bench:
    def __init__(self, counter: CallCounter):
        import boto3

        from loopline.embedded.runtime import EmbeddedAws

        self.counter = counter
        self.aws = EmbeddedAws()
        # The handlers' clients come from boto3.client() (the default session);
        # make that session now so the hook is on it before the engine is built.
        boto3.setup_default_session()
        counter.register(boto3.DEFAULT_SESSION)
        counter.register(self.aws.session)
        self.runtime = None
        self.clock = None
        self.clock_kind: str | None = None

    def use_runtime(self, clock_kind: str) -> None:
        from infra import wiring
        from infra.clock import ManualClock, SystemClock
        from loopline.embedded.runtime import LocalRuntime

        if self.runtime is not None and self.clock_kind == clock_kind:
            return
        self.clock_kind = clock_kind
        self.clock = ManualClock() if clock_kind == "movable" else SystemClock()
        runtime = LocalRuntime(self.aws, clock=self.clock)
        runtime.invoke = self.counter.wrap(runtime.invoke, "handler")
        runtime.poll_once = self.counter.wrap(runtime.poll_once, "poller")
        # Its look, before sleeping, for messages an earlier process left (GetQueueAttributes).
        runtime.idle = self.counter.wrap(runtime.idle, "poller")
        runtime.fire_due_timers = self.counter.wrap(runtime.fire_due_timers, "scheduler")
        runtime.streams.poll_once = self.counter.wrap(runtime.streams.poll_once, "stream")
        runtime.streams.invoke = self.counter.wrap(runtime.streams.invoke, "history")
        # The Lambda service's side of the task runner: its destination record sent to the result queue.
        runtime.lambda_service.send = self.counter.wrap(runtime.lambda_service.send, "lambda")
        self.runtime = runtime
        with self.counter.tagged("setup"):
            wiring.get_engine()  # built once per container (reads the link key secret): not a transition

    @property
    def engine(self):
        from infra.wiring import get_engine

        return get_engine()

    def run_once(self, plan, timeout: float) -> tuple[str, float]:
        runtime, counter = self.runtime, self.counter
        with runtime.lock, counter.tagged("api"):
            started = time.perf_counter()
            run_id = self.engine.start_run(plan, {})

        def done() -> bool:
            with runtime.lock, counter.tagged("observer"):
                run = self.engine.store.get_run(run_id)
            return run is not None and run.status in TERMINAL_RUN

        if self.clock_kind == "movable":
            # run_until cannot move the clock: pump, and move it 1s whenever idle.
            deadline = time.monotonic() + timeout
            while not done():
                if time.monotonic() > deadline:
                    raise SystemExit(f"run {run_id} did not finish within {timeout:g}s")
                if runtime.pump_once() == 0:
                    self.clock.advance(1)
        elif not runtime.run_until(done, timeout):
            raise SystemExit(f"run {run_id} did not finish within {timeout:g}s")
        took = time.perf_counter() - started
        while runtime.streams.poll_once():  # the rest of the run's writes into its history
            pass
        return run_id, took

    def statuses(self, run_id: str) -> tuple[str, dict[str, int]]:
        with self.runtime.lock, self.counter.tagged("observer"):
            view = self.engine.describe_run(run_id)
        return view["status"], dict(collections.Counter(t["status"] for t in view["tasks"].values()))

    def stop(self) -> None:
        from infra import wiring

        wiring.reset()
        self.aws.stop()


def measure(bench: Bench, label: str, path: Path, clock_kind: str, repeat: int, timeout: float) -> Measured:
    from statemachine.compiler import load_and_compile

    plan = load_and_compile(path)
    bench.use_runtime(clock_kind)
    bench.run_once(plan, timeout)  # warm-up: plan stored and cached
    bench.counter.take()
    per_run: list[collections.Counter] = []
    empties: list[collections.Counter] = []
    rejections: list[collections.Counter] = []
    seconds = 0.0
    statuses: dict[str, int] = {}
    for _ in range(repeat):
        bench.counter.enabled = True
        run_id, took = bench.run_once(plan, timeout)
        bench.counter.enabled = False
        counts, empty, rejected = bench.counter.take()
        per_run.append(counts)
        empties.append(empty)
        rejections.append(rejected)
        seconds += took
        status, statuses = bench.statuses(run_id)
        if status != "COMPLETED":
            raise SystemExit(f"{label}: run {run_id} ended {status}: {statuses}")
    keys = set().union(*per_run)
    keys = {k for k in keys if k[0] not in ("observer", "setup")}
    measured = Measured(
        label=label,
        transitions=sum(n for s, n in statuses.items() if s in TERMINAL_TASK),
        statuses=statuses,
        seconds=seconds / repeat,
        calls={k: sum(c[k] for c in per_run) / repeat for k in keys},
        empty_receives={t: sum(e[t] for e in empties) / repeat for t in set().union(*empties)},
        rejected={k: sum(r[k] for r in rejections) / repeat for k in set().union(*rejections) if k in keys},
        varied={k for k in keys if len({c[k] for c in per_run}) > 1},
    )
    return measured


# ------------------------------------------------------------------ printing


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]], first_left: bool = True) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if (i == 0 and first_left) else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def report(results: list[Measured], repeat: int) -> None:
    def total(m: Measured, tag: str, service: str | None = None) -> float:
        return sum(v for (t, s, _), v in m.calls.items() if t == tag and (service is None or s == service))

    print("\n## 1. AWS API calls per task transition (worker handler calls; the README figure)\n")
    rows = []
    for m in results:
        handler = total(m, "handler")
        n = m.transitions
        rows.append([m.label, str(n), _num(handler), f"{handler / n:.2f}",
                     *(f"{total(m, 'handler', s) / n:.2f}" for s in SERVICES),
                     _num(total(m, "api")), f"{(handler + total(m, 'api')) / n:.2f}"])
    print(_table(["workflow", "transitions", "handler calls/run", "per transition", *SERVICES,
                  "start_run calls", "per transition incl. start_run"], rows))
    by_label = {m.label: m for m in results}
    one, ten = by_label.get("chain of 1 python task"), by_label.get("chain of 10 python tasks")
    if one and ten:
        marginal = (total(ten, "handler") - total(one, "handler")) / (ten.transitions - one.transitions)
        fixed = total(one, "handler") - marginal * one.transitions
        print(f"\nMarginal cost of one more task in a chain: {marginal:.2f} handler calls; fixed cost per run:"
              f" {fixed:.2f} handler calls + {_num(total(one, 'api'))} start_run calls.")

    ops = sorted({(s, o) for m in results for (t, s, o) in m.calls if t == "handler"},
                 key=lambda so: (SERVICES.index(so[0]) if so[0] in SERVICES else 9, so[1]))
    print("\n## 2. Worker handler calls per transition, by operation\n")
    rows = [[m.label, *(f"{m.calls.get(('handler', s, o), 0) / m.transitions:.2f}" for s, o in ops)]
            for m in results]
    print(_table(["workflow", *(o for _, o in ops)], rows))

    print("\n## 3. The history consumer (HistoryFunction, not the worker): calls per transition\n")
    rows = []
    for m in results:
        n = m.transitions
        kept = [_num(m.calls.get(("history", "dynamodb", op), 0))
                for op in ("BatchGetItem", "BatchWriteItem", "PutItem")]
        rows.append([m.label, str(n), f"{total(m, 'history') / n:.2f}", *kept,
                     f"{total(m, 'stream') / n:.2f}", f"{total(m, 'handler') / n:.2f}"])
    print(_table(["workflow", "transitions", "history calls per transition", "BatchGetItem/run", "BatchWriteItem/run",
                  "PutItem/run", "stream reads per transition", "worker calls per transition (as in 1)"], rows))

    print("\n## 4. Per-run totals, by caller and operation\n")
    tags = ("api", "handler", "poller", "scheduler", "lambda", "history", "stream")
    for m in results:
        status_text = ", ".join(f"{n} {s}" for s, n in sorted(m.statuses.items()))
        print(f"{m.label}: {m.transitions} transitions ({status_text}), {m.seconds * 1000:.0f} ms per run")
        for tag in tags + tuple(sorted({t for t, _, _ in m.calls} - set(tags))):
            items = sorted(((s, o), v) for (t, s, o), v in m.calls.items() if t == tag)
            if not items:
                continue
            parts = [f"{s}:{o} {_num(v)}{'*' if (tag, s, o) in m.varied else ''}"
                     + (f" ({_num(m.rejected[(tag, s, o)])} rejected)" if m.rejected.get((tag, s, o)) else "")
                     for (s, o), v in items]
            empty = m.empty_receives.get(tag)
            if empty:
                parts.append(f"(of the ReceiveMessage: {_num(empty)} empty)")
            print(f"  {tag:<9} {_num(sum(v for _, v in items)):>6}  " + ", ".join(parts))
    print(f"\nFigures are per run, the mean of {repeat} counted runs after one warm-up run of each workflow;"
          " '*' marks a count that differed between runs;"
          " '(n rejected)': calls answered with an error, e.g. a failed condition (still billed).")
    print("handler   = calls made by the worker Lambda's code (inside LocalRuntime.invoke): the engine's own calls.")
    print("api       = engine.start_run (the API Lambda behind POST /runs): PutItem run, SendMessage start.")
    print("poller    = the Lambda SQS event source mapping's calls, emulated by LocalRuntime.poll_once. Not made by"
          " loopline code, but SQS bills them as requests on the queue. How many are empty depends on the pump"
          " loop's timing (here: poll, then sleep until a send, a due time or a request wakes it), not on the engine.")
    print("scheduler = EventBridge Scheduler firing one-time schedules, emulated by LocalRuntime.fire_due_timers"
          " (ListSchedules every pump, GetSchedule/SendMessage/DeleteSchedule when due). On AWS these happen"
          " inside the Scheduler service and are not API calls of ours.")
    print("lambda    = the Lambda service's side of a code task: the task runner's destination record sent to the"
          " result queue (locally loopline/embedded/async_lambda.py; on AWS not an API call of ours).")
    print("history   = HistoryFunction's own calls: per stream batch, one BatchGetItem per 100 history entries"
          " (which are new) and one BatchWriteItem per 25 new ones (an entry per applied transition of a task or the"
          " run: a task's claim and its end, the run's start and end; a PutItem each only where a batch request"
          " fails). The labels of task metrics need the run's workflow and plan, which the consumer keeps from the"
          " run's own item's changes in the stream (no read), and the plan (its GetItem was in the warm-up run).")
    print("stream    = the DynamoDB stream event source mapping's reads (GetRecords, GetShardIterator), emulated"
          " by LocalRuntime.streams.poll_once; on AWS, Lambda's polling of the stream (not billed per request)."
          " On moto the records are read off its backend, not by request (loopline/embedded/moto_streams.py).")
    print("handler includes the worker's Invoke of the task runner and its reading of the result queue's records."
          " Not in a run's figures: each code task's watchdog, an exec message due 1 s after the lease (the code's"
          " timeout + 90 s), which then costs the worker 1 BatchGetItem (and the poller a receive and a delete).")
    print("Not counted: the benchmark's own status reads; the link-key GetSecretValue a container makes once"
          " when it builds its engine; a plan's first start_run (+1 PutItem of the plan, done in the warm-up run);"
          " on AWS a cold worker container's first message of a plan (+1 GetItem; here the API and the worker"
          " share one engine and its plan cache).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="counted runs per workflow (default 3)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take (default 60)")
    parser.add_argument("--only", default="", help="only the workflows whose label contains this text")
    parser.add_argument("--recall-seconds", type=float, default=None,
                        help="how long an invocation's memory of what it read and wrote is used (the engine's"
                             " 1 s by default): longer, the counts no longer move with the machine's load")
    args = parser.parse_args(argv)
    if args.recall_seconds is not None:
        from infra.engine import recall

        # Bound as the constructor's default when the engine is built (infra/wiring.py makes it).
        recall.RecallingStore.__init__.__defaults__ = (args.recall_seconds,)

    print("$ " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, os.getcwd())
                                                      if sys.executable.startswith(os.getcwd()) else sys.executable,
                                                      *sys.argv]))
    import boto3
    import moto

    print(f"# embedded default: moto {moto.__version__} in-process, boto3 {boto3.__version__}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    counter = CallCounter()
    t0 = time.perf_counter()
    bench = Bench(counter)
    try:
        results = [measure(bench, label, WORKFLOWS / name, clock, args.repeat, args.timeout)
                   for label, name, clock in CASES if args.only in label]
    finally:
        bench.stop()
    report(results, args.repeat)
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
