"""Crashing `loopline dev` by hand: with the emulated AWS in its own process (`loopline emulator`),
the dev server is killed with SIGKILL mid-run and started again, and the runs carry on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.e2e.test_dev_server import LOOPLINE, get_json, request

WORKFLOW = """
workflow:
  metadata: {id: restart}
  tasks:
    - {id: first, type: python, config: {code: "result = 1"}}
    - id: ask
      type: approval
      depends_on: [first]
      config: {title: "Go on?", approvers: [a@example.com]}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = tasks['first']['output'] + 1"}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([LOOPLINE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


@pytest.fixture
def emulator():
    port = free_port()
    proc = start(["emulator", "--port", str(port)])
    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


def dev(endpoint: str, port: int) -> subprocess.Popen:
    proc = start(["dev", "--port", str(port), "--aws-endpoint", endpoint])
    wait_until(lambda: get_json(f"http://127.0.0.1:{port}/runs/nothing")[0] == 404)
    return proc


def test_killing_the_dev_server_loses_nothing(emulator):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = dev(emulator, port)
    try:
        status, _, text = request("POST", f"{base}/runs", {"workflow": WORKFLOW, "input": {}})
        assert status == 201, text
        run_id = json.loads(text)["run_id"]
        wait_until(lambda: get_json(f"{base}/runs/{run_id}")[1]["approvals"])
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # no shutdown of any kind, as a dead Lambda
        server.wait(timeout=10)

    server = dev(emulator, port)  # a new process, every in-memory state gone
    try:
        view = get_json(f"{base}/runs/{run_id}")[1]
        assert view["tasks"]["first"] == {"status": "COMPLETED", "output": 1, "attempts": 1, "error": None}
        assert view["tasks"]["ask"]["status"] == "WAITING"
        link = view["approvals"][0]["url"]
        status, _, text = request("POST", link, {"decision": "APPROVED"})
        assert status == 200, text
        assert request("POST", link, {"decision": "APPROVED"})[0] == 410  # the same click again
        done = wait_until(lambda: (v := get_json(f"{base}/runs/{run_id}")[1])["status"] == "COMPLETED" and v)
        assert done["tasks"]["after"]["output"] == 2 and done["tasks"]["first"]["attempts"] == 1
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_emulator_serves_sdks_and_refuses_web_pages(emulator):
    """A page on any origin could otherwise read the link key from the emulator (loopline/embedded/moto_server.py)."""
    import urllib.error
    import urllib.request

    import boto3

    sqs = boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1")
    assert "QueueUrl" in sqs.create_queue(QueueName="mine")
    # What an <img> or a no-cors fetch would send: a query-protocol call, with a browser's headers.
    for headers in ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, {"Origin": "http://evil.example"},
                    {"Host": f"rebind.example:{emulator.rsplit(':', 1)[1]}"}):
        request = urllib.request.Request(f"{emulator}/?Action=CreateQueue&QueueName=owned", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    assert [url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])] == ["mine"]
