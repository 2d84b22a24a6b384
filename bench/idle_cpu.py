"""CPU used by loopline while it has nothing to do: `loopline dev` idle and with a run waiting on an
approval, and `loopline run` (embedded, and --local) waiting on an approval.

Starts each as a user would (a real process; `dev` on a free port), lets it settle, then reads the
process's user+system CPU time from /proc/<pid>/stat over a window of real time and prints it as a
percentage of one core. The waiting runs are of a workflow whose first task is an approval: once
its link is out nothing happens until someone decides, which the script then does (through the
link), checking that the run goes on to COMPLETED. Linux only.

    .venv/bin/python bench/idle_cpu.py                 # 10 s windows
    .venv/bin/python bench/idle_cpu.py --seconds 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from loopline.client import ApiUnreachable, api_call

ROOT = Path(__file__).resolve().parents[1]
WAITING = """
workflow:
  metadata: {id: idle_bench, name: Idle bench}
  tasks:
    - id: ask
      type: approval
      config: {title: "Ship it?", approvers: [editor@example.com], timeout: 2h}
    - id: after
      type: python
      depends_on: [ask]
      config: {code: "result = 1"}
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, seconds: float) -> float:
    """Percent of one core used by ``pid`` over ``seconds`` of real time."""
    cpu, wall = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)


def wait_for(check, what: str, tries: int = 300):
    """``check()``'s first true answer, asked every 0.2 s (a server not answering yet counts as no)."""
    for _ in range(tries):
        with contextlib.suppress(ApiUnreachable):
            answer = check()
            if answer:
                return answer
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def measure_run(local: bool, args: argparse.Namespace) -> float:
    """`loopline run` of WAITING: percent of one core while it waits; then approve and see it end."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"idle_bench_{os.getpid()}.yaml"
    path.write_text(WAITING)
    command = [sys.executable, "-m", "loopline.cli", "run", str(path), *(["--local"] if local else []),
               "--timeout", "300"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        link = None
        for line in proc.stderr:
            found = re.search(r"approval waiting: task 'ask': (\S+)", line)
            if found:
                link = found.group(1)
                break
        if link is None:
            raise SystemExit(f"no approval link from {' '.join(command)}")
        time.sleep(args.settle)
        busy = measure(proc.pid, args.seconds)
        status, _ = api_call("POST", link, {"decision": "APPROVED"})
        out, _ = proc.communicate(timeout=60)
        if "COMPLETED" not in out:
            raise SystemExit(f"approving answered {status}; the run printed {out!r}")
        if status != 200:  # the decision was applied (the run completed), yet the link answered badly
            print(f"note: {' '.join(command[3:])}: the approval link answered {status}")
        return busy
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        path.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measuring window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each window")
    args = parser.parse_args()
    print(f"$ {Path(sys.executable).name} bench/idle_cpu.py --seconds {args.seconds:g} --settle {args.settle:g}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "loopline.cli", "dev", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: api_call("GET", f"{base}/runs/nothing")[0] == 404, "the server")
        time.sleep(args.settle)
        idle = measure(proc.pid, args.seconds)
        print(f"{'idle `loopline dev`:':46s}{idle:5.1f} % of one core over {args.seconds:g} s")
        status, started = api_call("POST", f"{base}/runs", {"workflow": WAITING})
        if status != 201:
            raise SystemExit(f"POST /runs answered {status}: {started}")
        run_id = started["run_id"]
        wait_for(lambda: api_call("GET", f"{base}/runs/{run_id}")[1].get("approvals"), "the approval")
        time.sleep(args.settle)
        waiting = measure(proc.pid, args.seconds)
        print(f"{'`loopline dev`, a run on an approval:':46s}{waiting:5.1f} % of one core over {args.seconds:g} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for local in (False, True):
        waiting = measure_run(local, args)
        what = "`loopline run --local`" if local else "`loopline run`"
        print(f"{what + ' waiting on an approval:':46s}{waiting:5.1f} % of one core over {args.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
