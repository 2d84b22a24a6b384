"""Where one embedded transition's time goes: loopline's engine, its AWS adapters, botocore, moto, the runtime.

Issue #12 item 5. Runs a workflow (default ``wait0_chain_10.yaml``: 10 waits of 0s, each completing in
its own exec message with no timer and no subprocess, so the engine's cost alone) on the embedded
default, ``--runs`` times sequentially after one warm-up run, alternating an unprofiled run (timed) and a
run under cProfile (profiled), both in this process on the same moto. The main thread pumps (as
``loopline run`` does); cProfile sees only it, so a code task's runner thread and its subprocess show as
the pump's waiting, not as work.

Each function's own time (cProfile's tottime) goes to a bucket by the file it is in:

* ``engine``      statemachine/, infra/ outside infra/aws/, functions/ (the Lambda handlers)
* ``adapters``    infra/aws/: the DynamoDB store, SQS queue, timers, payloads (they build the requests)
* ``botocore``    botocore, boto3: parameter validation, serialization, signing, hooks, parsing
* ``moto``        moto and what only it uses (responses, werkzeug, xmltodict, jinja2): the emulated service
* ``powertools``  aws_lambda_powertools: the handlers' batch processor, logger, metrics
* ``runtime``     loopline/ (the local runtime: pumps, doorbell, stream poller, the Lambda emulation)
* ``harness``     bench/: this benchmark's call counter and finish timestamps
* ``waiting``     a thread lock's acquire, ``time.sleep``, ``select``: the pump asleep or yielding the GIL

Code of no bucket (the standard library, pydantic, dateutil...) is charged to its callers' buckets in the
proportion of the time each caller spent in it, up the call graph (cProfile keeps one level of callers,
so this assumes a function costs the same whoever calls it, as gprof does): ``json.dumps`` called by
moto is moto's time. What no bucket calls is ``other``.

A transition is a task of the run's view (describe_run) that reached a final status, as in
bench/transitions.py: a for_each's iterations are not among them (``for_each_100.yaml`` counts 2 per
run), so for a loop divide the per-run figures by its items instead.

cProfile slows call-heavy code more than the rest, so the profiled milliseconds are larger than the
unprofiled ones and the shares lean towards botocore and moto (many small calls): the table gives both
the profiled ms and each share applied to the unprofiled wall time, as an estimate.

    .venv/bin/python bench/profile_transition.py [--runs 10] [--workflow wait0_chain_10.yaml] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import platform
import pstats
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import throughput  # noqa: E402  (its finish timestamps)
import transitions  # noqa: E402  (its embedded stack and AWS call counter)

BUCKETS = ("engine", "adapters", "botocore", "moto", "powertools", "runtime", "harness", "waiting", "other")
_LIBRARIES = {"botocore": "botocore", "boto3": "botocore", "s3transfer": "botocore", "moto": "moto",
              "responses": "moto", "werkzeug": "moto", "xmltodict": "moto", "jinja2": "moto",
              "aws_lambda_powertools": "powertools"}
# Builtins in which a thread waits rather than works (cProfile names builtins by their repr).
_WAITING = ("acquire' of '_thread.lock", "acquire' of '_thread.RLock", "time.sleep", "select.", "poll' of")

Func = tuple[str, int, str]  # cProfile's key: (filename, line, function name)


def bucket_of(func: Func) -> str | None:
    """The bucket a function's own time belongs to, or None: charged to its callers."""
    filename, _, name = func
    if filename == "~":
        return "waiting" if any(w in name for w in _WAITING) else None
    path = Path(filename)
    if path.is_relative_to(ROOT) and ".venv" not in path.parts:
        top = path.relative_to(ROOT).parts[0]
        if top == "infra" and path.parent.name == "aws":
            return "adapters"
        return {"statemachine": "engine", "infra": "engine", "functions": "engine", "loopline": "runtime",
                "bench": "harness"}.get(top)
    if "site-packages" in path.parts:
        package = path.parts[path.parts.index("site-packages") + 1]
        return _LIBRARIES.get(package.removesuffix(".py"))
    return None


class Attribution:
    """Own time per bucket, with the time of bucketless functions passed up to their callers."""

    def __init__(self, stats: dict[Func, tuple]) -> None:
        self.stats = stats
        self.owners = self._owners()

    def _owners(self) -> dict[Func, dict[str, float]]:
        """{function: {bucket: fraction of its own time}}. A bucketless function's mix is its callers'
        mixes weighted by the time each spent in it (its cumulative time on that call edge), worked out
        again until nothing changes, so that cycles among bucketless functions (recursion in json, copy)
        settle on the mix of the bucketed code that enters them."""
        owners: dict[Func, dict[str, float]] = {}
        loose: list[Func] = []
        for func in self.stats:
            bucket = bucket_of(func)
            if bucket is None:
                loose.append(func)
            else:
                owners[func] = {bucket: 1.0}
        for _ in range(100):
            changed = False
            for func in loose:
                # Each caller's edge: (primitive calls, calls, own time, cumulative time) when it calls func.
                edges = [(caller, edge[3] or edge[1]) for caller, edge in self.stats[func][4].items()
                         if caller != func and caller in owners]
                total = sum(weight for _, weight in edges)
                if not total:
                    continue
                mix: dict[str, float] = collections.defaultdict(float)
                for caller, weight in edges:
                    for name, share in owners[caller].items():
                        mix[name] += share * weight / total
                old = owners.get(func, {})
                if any(abs(mix[k] - old.get(k, 0.0)) > 1e-9 for k in set(mix) | set(old)):
                    owners[func], changed = dict(mix), True
            if not changed:
                break
        return owners

    def seconds(self) -> dict[str, float]:
        out = dict.fromkeys(BUCKETS, 0.0)
        for func, (_, _, own, _, _) in self.stats.items():
            for name, share in self.owners.get(func, {"other": 1.0}).items():
                out[name] += own * share
        return out


class CallClock:
    """Wall time of each AWS API call by operation, outside cProfile: from botocore's
    before-parameter-build (before validation and serialization) to its after-call (the reply parsed),
    so each call's botocore and moto time together, undistorted by the profiler."""

    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()
        self.enabled = False

    def register(self, session) -> None:
        session.events.register("before-parameter-build", self._before)
        session.events.register("after-call", self._after)

    def _before(self, context: dict, **_) -> None:
        context["bench_started"] = time.perf_counter()

    def _after(self, model, context: dict, **_) -> None:
        started = context.pop("bench_started", None)
        if self.enabled and started is not None:
            self.seconds[f"{model.service_model.service_name}:{model.name}"] += time.perf_counter() - started


@dataclass
class Timings:
    plain_wall: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    profiled_wall: list[float] = field(default_factory=list)


class Runner:
    """One embedded stack (transitions.Bench: EmbeddedAws with an AWS call counter on both sessions)
    and a LocalRuntime of its own, without the counter's per-role wrappers, so that cProfile tells the
    runtime's methods apart by their callers."""

    def __init__(self) -> None:
        import boto3

        from infra.clock import SystemClock
        from loopline.embedded.runtime import LocalRuntime

        self.counter = transitions.CallCounter()
        self.bench = transitions.Bench(self.counter)
        self.clock = CallClock()  # on both sessions before the runtime and the engine make their clients
        self.clock.register(self.bench.aws.session)
        self.clock.register(boto3.DEFAULT_SESSION)
        self.runtime = self.bench.runtime = LocalRuntime(self.bench.aws, clock=SystemClock())
        self.engine = self.bench.engine  # built once per container, as a warm worker's
        self.finished = throughput.timestamp_finishes(self.engine.store)

    def run(self, plan, timeout: float) -> str:
        """Start a run, pump it to completion, then deliver the stream's records of it to the history
        consumer (part of what a transition costs here, as in bench/transitions.py)."""
        runtime = self.runtime
        with runtime.lock, self.counter.tagged("api"):
            run_id = self.engine.start_run(plan, {})
        if not runtime.run_until(lambda: run_id in self.finished, timeout):
            raise SystemExit(f"run {run_id} did not finish within {timeout:g}s")
        while runtime.streams.poll_once():
            pass
        return run_id

    def delayed(self) -> int:
        """Messages delayed in the runtime's queues (SQS DelaySeconds not yet over)."""
        sqs = self.runtime.aws.client("sqs")
        return sum(int(sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=[
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"])
            for source in self.runtime.stack.queue_sources)

    def transitions(self, run_id: str) -> int:
        status, statuses = self.bench.statuses(run_id)
        if status != "COMPLETED":
            raise SystemExit(f"run {run_id} ended {status}: {statuses}")
        return sum(n for s, n in statuses.items() if s in transitions.TERMINAL_TASK)


def measure(runner: Runner, plan, runs: int, timeout: float) -> tuple[Timings, cProfile.Profile, int]:
    profile = cProfile.Profile()
    timings = Timings()
    runner.transitions(runner.run(plan, timeout))  # warm-up: the plan stored and cached, imports done
    per_run = 0
    runner.counter.take()
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        runner.counter.enabled = runner.clock.enabled = True
        run_id = runner.run(plan, timeout)
        runner.counter.enabled = runner.clock.enabled = False
        timings.plain_wall.append(time.perf_counter() - wall)
        timings.plain_cpu.append(time.process_time() - cpu)
        per_run = runner.transitions(run_id)
        wall = time.perf_counter()
        profile.enable()
        run_id = runner.run(plan, timeout)
        profile.disable()
        timings.profiled_wall.append(time.perf_counter() - wall)
        runner.transitions(run_id)
    return timings, profile, per_run


# ------------------------------------------------------------------ printing


def _ms(seconds: float, per: float) -> str:
    return f"{seconds / per * 1000:.2f}"


def _where(func: Func) -> str:
    filename, line, name = func
    path = Path(filename)
    if "site-packages" in path.parts:
        path = Path(*path.parts[path.parts.index("site-packages") + 1:])
    elif path.is_relative_to(ROOT):
        path = path.relative_to(ROOT)
    return f"{path}:{line}({name})"


def _find(stats: dict[Func, tuple], suffix: str, name: str) -> Func | None:
    return next((f for f in stats if f[0].endswith(suffix) and f[2] == name), None)


def report(timings: Timings, profile: cProfile.Profile, per_run: int, runs: int, counts: collections.Counter,
           clock: collections.Counter, top: int) -> None:
    stats: dict[Func, tuple] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    n = per_run * runs  # transitions in the profiled (and in the unprofiled) runs
    plain_wall, plain_cpu, profiled = sum(timings.plain_wall), sum(timings.plain_cpu), sum(timings.profiled_wall)
    seconds = Attribution(stats).seconds()
    total = sum(seconds.values())

    print(f"\n{runs} unprofiled and {runs} profiled runs of {per_run} transitions, alternating.")
    print(f"unprofiled: {_ms(plain_wall, n)} ms wall per transition ({runs / plain_wall:.2f} runs/s),"
          f" {_ms(plain_cpu, n)} ms CPU of this process")
    print(f"profiled:   {_ms(profiled, n)} ms wall per transition (cProfile x{profiled / plain_wall:.2f});"
          f" the profile accounts for {_ms(total, n)} ms")

    print("\n## Time per transition by bucket (own time; bucketless code charged to its callers)\n")
    work = total - seconds["waiting"]
    rows = [[name, _ms(seconds[name], n), f"{seconds[name] / total * 100:.1f}",
             f"{seconds[name] / total * plain_wall / n * 1000:.2f}"] for name in BUCKETS if seconds[name] > 0]
    rows.append(["total", _ms(total, n), "100.0", _ms(plain_wall, n)])
    print(transitions._table(["bucket", "profiled ms", "% of profiled", "est. ms unprofiled"], rows))
    engine = seconds["engine"] + seconds["adapters"]
    print(f"\nThe engine's own share: engine {seconds['engine'] / total * 100:.1f} % (with its AWS adapters"
          f" {engine / total * 100:.1f} %) of the profiled time, {seconds['engine'] / work * 100:.1f} %"
          f" ({engine / work * 100:.1f} %) of the time not waiting.")
    print(f"botocore + moto: {(seconds['botocore'] + seconds['moto']) / total * 100:.1f} % of the profiled time.")

    calls_by_op: collections.Counter = collections.Counter()
    for (tag, service, op), v in counts.items():
        if tag != "observer":
            calls_by_op[f"{service}:{op}"] += v
    calls = sum(calls_by_op.values())
    if calls:
        aws = seconds["botocore"] + seconds["moto"]
        print(f"Per AWS call (profiled): botocore {_ms(seconds['botocore'], calls)} ms + moto"
              f" {_ms(seconds['moto'], calls)} ms = {_ms(aws, calls)} ms")
        print("\n## AWS API calls per transition, unprofiled (every caller: start_run, worker, SQS poller,"
              " Scheduler emulation, stream poller, history consumer)\n")
        rows = [[op, f"{v / n:.2f}", _ms(clock[op], v), _ms(clock[op], n),
                 f"{clock[op] / plain_wall * 100:.1f}"] for op, v in calls_by_op.most_common()]
        in_calls = sum(clock.values())
        rows.append(["total", f"{calls / n:.2f}", _ms(in_calls, calls), _ms(in_calls, n),
                     f"{in_calls / plain_wall * 100:.1f}"])
        print(transitions._table(["operation", "calls", "ms per call", "ms per transition", "% of wall"], rows))
        print("(a call's time: botocore's validation, serialization, signing, hooks and parsing, and moto's"
              " handling, from before-parameter-build to after-call)")

    roles(stats, n)
    for library in ("botocore", "moto"):
        inside = [f for f in stats if bucket_of(f) == library]
        for key, what in ((3, "cumulative time (with what they call: botocore's include moto's)"),
                          (2, "own time")):
            chosen = sorted(inside, key=lambda f: -stats[f][key])[:top]
            print(f"\n## Top {len(chosen)} functions of {library} by {what}, profiled ms per transition\n")
            print(transitions._table(["function", "cum ms", "own ms", "calls"],
                                     [[_where(f), _ms(stats[f][3], n), _ms(stats[f][2], n),
                                       f"{stats[f][1] / n:.1f}"] for f in chosen]))


def roles(stats: dict[Func, tuple], n: int) -> None:
    """The same profile cut by who runs the code: the worker's invocations, the history consumer's, the
    pumps' own AWS calls, the API's start_run, and the pump asleep."""
    invoke = _find(stats, "loopline/embedded/runtime.py", "invoke")
    poll = _find(stats, "loopline/embedded/runtime.py", "poll_once")
    stream_poll = _find(stats, "loopline/embedded/streams.py", "_poll")
    timers = _find(stats, "loopline/embedded/runtime.py", "fire_due_timers")
    sleep = _find(stats, "loopline/embedded/pump_sleep.py", "sleep")
    start = _find(stats, "infra/engine/engine.py", "start_run")

    def cum(func: Func | None) -> float:
        return stats[func][3] if func else 0.0

    def edge(callee: Func | None, caller: Func | None) -> float:
        return stats[callee][4].get(caller, (0, 0, 0, 0))[3] if callee and caller else 0.0

    rows = [
        ("start_run (the API function)", cum(start)),
        ("worker invocations (SQS batches)", edge(invoke, poll)),
        ("history consumer invocations (stream batches)", edge(invoke, stream_poll)),
        ("SQS poller's own calls (receive, delete)", cum(poll) - edge(invoke, poll)),
        ("stream poller's own reads (moto's backend)", cum(stream_poll) - edge(invoke, stream_poll)),
        ("Scheduler emulation (ListSchedules every pass)", cum(timers)),
        ("pump asleep (doorbell)", cum(sleep)),
    ]
    print("\n## The same time by role (cumulative, profiled ms per transition)\n")
    print(transitions._table(["role", "ms"], [[name, _ms(s, n)] for name, s in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="unprofiled and profiled runs each (default 10)")
    parser.add_argument("--workflow", default="wait0_chain_10.yaml",
                        help="a file of bench/workflows/ (default wait0_chain_10.yaml; chain_10.yaml: python tasks)")
    parser.add_argument("--top", type=int, default=15, help="functions listed per library (default 15)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take (default 120)")
    parser.add_argument("--save", metavar="FILE", help="also write the raw cProfile stats there (pstats, snakeviz)")
    parser.add_argument("--prefill", type=int, default=0, metavar="K",
                        help="first K runs of chain_10.yaml (python tasks), untimed: each task leaves its watchdog"
                        " message delayed in the ready queue, as on a server that has run code tasks lately")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    shown = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable
    print("$ " + " ".join(shlex.quote(a) for a in [shown, *sys.argv]))
    import boto3
    import moto

    from statemachine.compiler import load_and_compile

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.workflow} on the embedded default:"
          f" moto {moto.__version__}, boto3 {boto3.__version__}, Python {platform.python_version()},"
          f" {os.cpu_count()} CPUs; load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    plan = load_and_compile(transitions.WORKFLOWS / args.workflow)
    runner = Runner()
    try:
        if args.prefill:
            code_plan = load_and_compile(transitions.WORKFLOWS / "chain_10.yaml")
            for _ in range(args.prefill):
                runner.run(code_plan, args.timeout)
            print(f"# after {args.prefill} runs of chain_10.yaml: {runner.delayed()} messages delayed in the queues")
        timings, profile, per_run = measure(runner, plan, args.runs, args.timeout)
        counts, _, _ = runner.counter.take()
        if args.save:
            profile.dump_stats(args.save)
    finally:
        runner.bench.stop()
    report(timings, profile, per_run, args.runs, counts, runner.clock.seconds, args.top)
    print(f"\n(load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; wall-clock figures:"
          " other work on the machine shows in them, the CPU figure less so)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
