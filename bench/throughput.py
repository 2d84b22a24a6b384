"""Runs per second and latency per run of a 10-task chain, on the embedded default and in local mode.

Each mode runs in its own child process (so its peak RSS is its own):

* ``embedded``  EmbeddedAws (moto in-process) + LocalRuntime, pumped in the main
                thread with ``runtime.run_until`` (the Lambda poller emulation:
                one batch of up to 10 messages per pump, one invocation at a time).
* ``local``     LocalMode: the same engine on in-memory adapters, ``mode.run_until``.
* ``sqlite``    LocalMode on a state directory (a fresh SQLite file, docs/local-state.md):
                what ``--local`` runs by default.

Workflows (bench/workflows/):

* ``chain_10.yaml``        10 python tasks; each runs in a sandboxed child
                           interpreter (a subprocess per task).
* ``wait0_chain_10.yaml``  10 ``wait`` tasks of 0s: each completes in its own exec
                           message with no timer and no subprocess, so this is
                           the engine's overhead (plus the adapters') alone.

For each: ``--warmup`` runs (default 2), then ``--runs`` K runs (default 20)
sequentially (start one, pump it to completion, next) and concurrently (start
all K, then pump until all finished), each of the four on a fresh stack (what a
measurement leaves, such as code tasks' delayed watchdog messages, would slow
the next). A run's latency is from just before
``start_run`` to the moment its run item is written COMPLETED (the benchmark
wraps ``engine.store.finish_run`` on the instance to timestamp it: no status
polling). runs/s = K / (last completion - first start).

    .venv/bin/python bench/throughput.py [--runs 20] [--warmup 2] [--mode all|embedded|local|sqlite]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKFLOWS = ROOT / "bench" / "workflows"
CASES = (
    ("10 python tasks (subprocess each)", "chain_10.yaml"),
    ("10 waits of 0s (engine overhead)", "wait0_chain_10.yaml"),
)
MODE_LABEL = {
    "embedded": "embedded default (moto in-process + LocalRuntime)",
    "local": "local mode (LocalMode, in-memory adapters)",
    "sqlite": "local mode on SQLite (LocalMode with a state directory)",
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB



def timestamp_finishes(store) -> dict[str, float]:
    """Wrap ``store.finish_run`` on this instance only: the returned dict gets each run's
    ``time.perf_counter()`` when its run item is written final (no status polling, which would
    add reads of its own to what is measured)."""
    finished: dict[str, float] = {}
    finish_run = store.finish_run

    def timed_finish_run(run_id, *args, **kwargs):
        changed = finish_run(run_id, *args, **kwargs)
        if changed:
            finished.setdefault(run_id, time.perf_counter())
        return changed

    store.finish_run = timed_finish_run
    return finished


class Host:
    """start(plan) -> run_id, pump_until(done, timeout), and completion times of runs."""

    def __init__(self, mode: str):
        self.mode = mode
        t0 = time.perf_counter()
        if mode == "embedded":
            from infra import wiring
            from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

            self.aws = EmbeddedAws()
            self.runtime = LocalRuntime(self.aws)
            self.lock = self.runtime.lock
            self.engine = wiring.get_engine()
        else:
            import tempfile
            import threading

            from loopline.memory.local_mode import LocalMode

            state = Path(tempfile.mkdtemp(prefix="loopline-bench-")) / "state" if mode == "sqlite" else None
            self.local = LocalMode(state=state)
            self.lock = threading.RLock()
            self.engine = self.local.engine
        self.setup_seconds = time.perf_counter() - t0
        self.finished = timestamp_finishes(self.engine.store)

    def start(self, plan) -> str:
        with self.lock:
            return self.engine.start_run(plan, {})

    def pump_until(self, done, timeout: float) -> bool:
        if self.mode == "embedded":
            return self.runtime.run_until(done, timeout)
        return self.local.run_until(done, timeout)

    def status(self, run_id: str) -> str:
        with self.lock:
            return self.engine.store.get_run(run_id).status

    def stop(self) -> None:
        if self.mode == "embedded":
            from infra import wiring

            wiring.reset()
            self.aws.stop()


def _stats(latencies: list[float], window: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"runs_per_s": len(latencies) / window, "mean": statistics.fmean(latencies) * 1000,
            "p50": statistics.median(latencies) * 1000, "p95": p95 * 1000, "window": window}


def sequential(host: Host, plan, k: int, timeout: float) -> dict[str, float]:
    starts: dict[str, float] = {}
    for _ in range(k):
        started = time.perf_counter()
        run_id = host.start(plan)
        starts[run_id] = started
        if not host.pump_until(lambda: run_id in host.finished, timeout):
            raise SystemExit(f"run {run_id} did not finish within {timeout:g}s")
    return _finish(host, starts)


def concurrent(host: Host, plan, k: int, timeout: float) -> dict[str, float]:
    starts: dict[str, float] = {}
    for _ in range(k):
        started = time.perf_counter()
        starts[host.start(plan)] = started
    if not host.pump_until(lambda: all(r in host.finished for r in starts), timeout):
        raise SystemExit(f"{sum(r not in host.finished for r in starts)} of {k} runs did not finish in {timeout:g}s")
    return _finish(host, starts)


def _finish(host: Host, starts: dict[str, float]) -> dict[str, float]:
    bad = {r: s for r in starts if (s := host.status(r)) != "COMPLETED"}
    if bad:
        raise SystemExit(f"runs did not complete: {bad}")
    latencies = [host.finished[r] - s for r, s in starts.items()]
    window = max(host.finished[r] for r in starts) - min(starts.values())
    return _stats(latencies, window)


def python_task_cost(n: int = 10) -> float:
    """Mean ms of one sandboxed python task alone (supervisor and child interpreter), outside any engine."""
    from infra.sandbox.launch import run_code
    from infra.sandbox.request import CodeRequest
    from infra.sandbox.settings import SandboxSettings

    settings = SandboxSettings.from_env(os.environ)

    probe = CodeRequest(kind="python", task_id="probe", run_id="bench", config={"code": "result = 1"}, timeout=60)
    assert run_code(probe, settings).output == 1
    t0 = time.perf_counter()
    for _ in range(n):
        run_code(probe, settings)
    return (time.perf_counter() - t0) / n * 1000


def run_mode(mode: str, args) -> None:
    from statemachine.compiler import load_and_compile

    print(f"\n## {MODE_LABEL[mode]}\n")
    rows = []
    setup: list[float] = []
    for label, name in CASES:
        plan = load_and_compile(WORKFLOWS / name)
        for how, measure in (("sequential", sequential), ("concurrent", concurrent)):
            # A fresh stack for each measurement: what one leaves behind must not weigh on the next (each
            # code task leaves its watchdog message delayed in the ready queue for its timeout + 90 s,
            # and moto scans every message of a queue on each receive).
            host = Host(mode)
            setup.append(host.setup_seconds)
            try:
                for _ in range(args.warmup):
                    sequential(host, plan, 1, args.timeout)
                rows.append((label, how, measure(host, plan, args.runs, args.timeout)))
            finally:
                host.stop()
    print(f"setup {min(setup):.2f}-{max(setup):.2f} s for each of {len(setup)} fresh stacks")
    header = ["workflow", "K runs", "runs/s", "mean ms", "p50 ms", "p95 ms", "wall s"]
    table = [[label, how, f"{s['runs_per_s']:.2f}", f"{s['mean']:.1f}", f"{s['p50']:.1f}", f"{s['p95']:.1f}",
              f"{s['window']:.2f}"] for label, how, s in rows]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for i, r in enumerate([header, ["-" * w for w in widths], *table]):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
    print(f"peak RSS of this process: {_rss_mb():.0f} MB")
    print(f"one sandboxed python task alone (child interpreter, outside the engine): {python_task_cost():.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="K runs per measurement (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per workflow first (default 2)")
    parser.add_argument("--mode", choices=("all", "embedded", "local", "sqlite"), default="all",
                        help="all (default) runs each mode in its own child process")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one measurement may take")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    if args.mode != "all":
        run_mode(args.mode, args)
        return 0
    exe = sys.executable
    shown = os.path.relpath(exe) if exe.startswith(os.getcwd() + os.sep) else exe
    print("$ " + " ".join(shlex.quote(a) for a in [shown, *sys.argv]))
    print(f"# K={args.runs} runs per measurement after {args.warmup} warm-up runs; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; each mode in its own child process")
    print("# load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + " (timings are wall-clock: other work on the machine shows in them)")
    print("# sequential: start a run, pump it to completion, next; concurrent: start K runs, then pump all.")
    print("# Pumping is single-threaded in every mode (one pumping thread: one invocation at a time),")
    print("# so 'concurrent' shows interleaving and queueing, not parallelism.")
    t0 = time.perf_counter()
    for mode in ("embedded", "local", "sqlite"):
        sys.stdout.flush()
        child = [exe, str(Path(__file__).resolve()), "--mode", mode, "--runs", str(args.runs),
                 "--warmup", str(args.warmup), "--timeout", str(args.timeout)]
        code = subprocess.call(child)
        if code:
            print(f"{mode}: child exited {code}", file=sys.stderr)
            return code
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
