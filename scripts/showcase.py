"""The README's showcase: `loopline dev` on the embedded stack, driven over HTTP as a user would.

Starts the dev server, submits examples/showcase.yaml, watches the durable
timer pass, opens the approval link (the page, then a JSON decision), answers
the callback, and prints the finished run. Exits non-zero if anything is off.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "showcase.yaml"
LOOPLINE = Path(sys.executable).with_name("loopline")


def http(method: str, url: str, body=None, accept: str = "application/json"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            text = reply.read().decode()
            return reply.status, (json.loads(text) if "json" in reply.headers.get("Content-Type", "") else text)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode() or "null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"showcase: timed out waiting for {what}")


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(LOOPLINE), "dev", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: server.poll() is not None or _up(base), "the dev server")
        if server.poll() is not None:
            raise SystemExit(f"showcase: loopline dev exited: {server.stderr.read()}")
        print(f"1. loopline dev is up on {base} (moto in-process, resources from template.yaml)")

        status, reply = http("POST", f"{base}/runs", {
            "workflow": WORKFLOW.read_text(),
            "input": {"quarter": "Q3-2026", "revenue": [120000, 135500, 128250]},
        })
        assert status == 201, (status, reply)
        run_id = reply["run_id"]
        print(f"2. POST /runs -> run {run_id}")

        def run():
            return http("GET", f"{base}/runs/{run_id}")[1]

        started = time.monotonic()
        view = wait_for(lambda: (v := run())["approvals"] and v, "the approval request")
        print(f"3. the 2s durable timer fired after {time.monotonic() - started:.1f}s; tasks now: "
              + ", ".join(f"{k}={t['status']}" for k, t in view["tasks"].items()))
        link = view["approvals"][0]["url"]
        status, page = http("GET", link, accept="text/html")
        title = page.split("<h1>", 1)[1].split("</h1>", 1)[0] if "<h1>" in page else "?"
        print(f"4. approval page ({status}): {title!r} for {view['approvals'][0].get('approver')}")
        status, decided = http("POST", link, {"decision": "APPROVED", "comments": "Numbers check out."})
        print(f"5. POST decision -> {status} {decided['decision']}")
        status, again = http("POST", link, {"decision": "REJECTED"})
        print(f"6. the same link again -> {status} {again['error']!r} (single use)")

        view = wait_for(lambda: (v := run())["callbacks"] and v, "the callback")
        callback = view["callbacks"][0]["url"]
        status, _ = http("POST", callback, {"copies": 250, "ready": "2026-12-01"})
        print(f"7. the print shop called back -> {status}")

        view = wait_for(lambda: (v := run())["status"] in ("COMPLETED", "FAILED", "CANCELLED") and v, "the end")
        print(f"8. run {view['status']}:")
        for task_id, task in view["tasks"].items():
            print(f"     {task_id:<20} {task['status']:<10} attempts={task['attempts']}")
        print("   outputs: " + json.dumps(view["outputs"]))
        return 0 if view["status"] == "COMPLETED" and view["outputs"]["outcome"] == "published" else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _up(base: str) -> bool:
    try:
        return http("GET", f"{base}/runs/none")[0] == 404
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
