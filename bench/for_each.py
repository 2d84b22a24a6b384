"""A for_each over N items (default 10,000): time and memory peak, local mode and the embedded default.

    .venv/bin/python bench/for_each.py                       # 10,000 items in local mode, 1,000 embedded
    .venv/bin/python bench/for_each.py --mode embedded --items 10000

Each mode runs in its own child process so its peak RSS is its own. The body is one
`wait: 0s` task (finishes in its own message: no timer, no subprocess), so the
figures are the engine's: per-iteration items, edge counting, the loop's counter.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKFLOW = ROOT / "bench" / "workflows" / "for_each_10k.yaml"


def measure(mode: str, items: int) -> dict:
    from statemachine.compiler import load_and_compile

    plan = load_and_compile(WORKFLOW)
    if mode == "local":
        from loopline.memory.local_mode import LocalMode

        host = LocalMode()
        engine, pump = host.engine, host.pump_once
    else:
        from infra.wiring import get_engine
        from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

        aws = EmbeddedAws()
        runtime = LocalRuntime(aws)
        engine, pump = get_engine(), runtime.pump_once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    run_id = engine.start_run(plan, {"items": list(range(items))})
    idle = 0
    while True:
        if pump():
            idle = 0
            continue
        idle += 1
        view_status = engine.store.get_run(run_id).status
        if view_status in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.001 if idle < 100 else 0.02)
    seconds = time.perf_counter() - started
    run = engine.store.get_run(run_id)
    _, recs = engine.store.load(run_id, ["each"])
    output = recs["each"].output
    return {"mode": mode, "items": items, "status": run.status, "outputs": len(output),
            "seconds": round(seconds, 2), "iterations_per_s": round(items / seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(before / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["local", "embedded", "both"], default="both")
    parser.add_argument("--items", type=int, default=None, help="default: 10000 local, 1000 embedded")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.mode, args.items)))
        return 0
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    modes = ["local", "embedded"] if args.mode == "both" else [args.mode]
    for mode in modes:
        items = args.items or (10_000 if mode == "local" else 1_000)
        done = subprocess.run([sys.executable, __file__, "--child", "--mode", mode, "--items", str(items)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{mode}: failed\n{done.stderr[-2000:]}")
            return 1
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode:9} {figures['items']:>6} items  {figures['status']:<9} {figures['outputs']:>6} outputs  "
              f"{figures['seconds']:>8.2f} s  {figures['iterations_per_s']:>8.1f} iterations/s  "
              f"peak RSS {figures['peak_rss_mb']} MB (before the run: {figures['rss_before_mb']} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
