"""loopline's three modes on W1-W3 (bench/peers/_workload.py), under loopline's own venv.

    memory    LocalMode in memory (what `--local --state :memory:` runs)
    sqlite    LocalMode on a fresh state directory (SQLite, what `--local` runs: docs/local-state.md)
    embedded  EmbeddedAws (moto in-process) + LocalRuntime: what `loopline run` runs

The hosts are bench/throughput.py's. Each step is a `wait` of 0s: it completes in its own exec
message with `{"woke_at": ...}`, no timer and no subprocess (a `python` task would add a sandboxed
child interpreter per step, ~30-70 ms, which is not what is compared here).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import _workload  # noqa: E402
import throughput  # noqa: E402

FILES = {"W1": "wait0_chain_10.yaml", "W2": "wait0_fanout_8.yaml", "W3": "for_each_10k.yaml"}
TIMEOUT = 900.0


def main() -> None:
    args = _workload.parse(modes=("memory", "sqlite", "embedded"))
    from statemachine.compiler import load_and_compile

    plan = load_and_compile(ROOT / "bench" / "workflows" / FILES[args.workload])
    # throughput.Host's "local" is in memory; its "sqlite" makes a fresh state directory.
    host = throughput.Host({"memory": "local"}.get(args.mode, args.mode))

    def run(size: int) -> None:
        with host.lock:
            run_id = host.engine.start_run(plan, {"items": list(range(size))} if args.workload == "W3" else {})
        if not host.pump_until(lambda: run_id in host.finished, TIMEOUT):
            raise SystemExit(f"run {run_id} did not finish within {TIMEOUT:g}s")
        status = host.status(run_id)
        if status != "COMPLETED":
            raise SystemExit(f"run {run_id} ended {status}")

    try:
        _workload.measure(args, run, f"loopline-{args.mode}")
    finally:
        host.stop()


if __name__ == "__main__":
    main()
