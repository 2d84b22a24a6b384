"""`loopline dev` as its front door (issue #9): whom it answers, bursts of clients, and answers that
are strict JSON. A real server process, HTTP requests only."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_dev_server import get_json, request, wait_for

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
PARKED = """
workflow:
  metadata: {id: parked}
  tasks:
    - {id: hook, type: callback, config: {timeout: 1h}}
"""
NON_FINITE = """
workflow:
  metadata: {id: non_finite}
  tasks:
    - {id: p, type: python, config: {code: "result = float('inf')"}}
  outputs:
    mappings:
      parsed: "${json_parse('1e999')}"
      from_task: "${tasks.p.output}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dev(*extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([LOOPLINE, "dev", "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read())
        try:
            if get_json(f"http://127.0.0.1:{port}/runs/nothing")[0] == 404:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("loopline dev did not answer within 60 s")


def stop_dev(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def dev():
    proc, port = start_dev("--allow-host", "devbox.test")
    yield port
    stop_dev(proc)


def raw(port: int, method: str, path: str, host: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def test_dns_rebinding_is_refused_and_allowed_hosts_are_answered(dev):
    base = f"http://127.0.0.1:{dev}"
    status, _, text = request("POST", f"{base}/runs", {"workflow": PARKED, "input": {}})
    run_id = json.loads(text)["run_id"]
    wait_for(lambda: get_json(f"{base}/runs/{run_id}")[1], lambda v: v["callbacks"])
    # A page whose name was re-bound to 127.0.0.1 sends its own name as the Host.
    for method, path, body in (("GET", "/approvals", None), ("GET", f"/runs/{run_id}", None),
                               ("POST", "/runs", json.dumps({"workflow": PARKED}).encode())):
        status, headers, answer = raw(dev, method, path, f"rebind.example:{dev}", body,
                                      {"Content-Type": "application/json"})
        assert status == 403 and b"/callbacks/" not in answer, (method, path, answer)
        assert json.loads(answer)["error"] and headers["x-content-type-options"] == "nosniff"
    for host in (f"localhost:{dev}", f"devbox.test:{dev}", "devbox.test"):  # --allow-host devbox.test
        status, _, answer = raw(dev, "GET", f"/runs/{run_id}", host)
        assert status == 200 and json.loads(answer)["run_id"] == run_id, host


def test_no_answer_carries_nan_or_infinity(dev):
    base = f"http://127.0.0.1:{dev}"
    status, _, text = request("POST", f"{base}/runs", {"workflow": NON_FINITE, "input": {}})
    assert status == 201, text
    run_id = json.loads(text)["run_id"]

    def strict_view():
        status, _, text = request("GET", f"{base}/runs/{run_id}", headers={"Accept": "application/json"})
        assert status == 200
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in GET /runs/{{id}}: {text}"))

    view = wait_for(strict_view, lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"), timeout=60)
    if view["status"] == "COMPLETED":  # the values that were infinite read as null
        assert view["outputs"] == {"parsed": None, "from_task": None}
        assert view["tasks"]["p"]["output"] is None
    status, _, text = request("POST", f"{base}/runs", raw=b'{"workflow": "parked", "input": {"n": NaN}}')
    assert status == 400 and "NaN" in json.loads(text)["error"]


def test_a_burst_of_posts_is_answered_every_one(dev):
    """200 POST /runs from 50 client threads: each a 201 (or a 503 JSON if saturated), never a reset."""
    base = f"http://127.0.0.1:{dev}"
    outcomes: list = []
    lock = threading.Lock()
    go = threading.Barrier(50, timeout=60)

    def client() -> None:
        go.wait()
        for _ in range(4):
            try:
                status, headers, text = request("POST", f"{base}/runs", {"workflow": PARKED, "input": {}})
                body = json.loads(text)
                outcome = status if status == 201 and body["run_id"] or (
                    status == 503 and headers["Content-Type"].startswith("application/json")) else (status, text)
            except OSError as error:  # reset, refused, timed out: what must never happen
                outcome = repr(error)
            with lock:
                outcomes.append(outcome)

    clients = [threading.Thread(target=client, daemon=True) for _ in range(50)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(180)
    assert len(outcomes) == 200
    failures = [o for o in outcomes if o not in (201, True)]
    assert not failures, failures[:5]
    assert outcomes.count(201) > 0
