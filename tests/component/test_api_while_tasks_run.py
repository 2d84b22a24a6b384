"""The dev server answers while a task runs (issue #9, item 9): no lock around task execution.

An ``http`` task calls a local server that holds its request until the test lets it go; while it
is held, the worker is inside its invocation and the API must still answer. Ordering, not timing:
the waits are bounded only so that a regression fails the test instead of hanging it."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BOUND = 20.0


class HeldServer:
    """Answers each request only once ``release`` is set; ``arrived`` is set when one comes in."""

    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                held.arrived.set()
                held.release.wait(BOUND * 2)
                body = b'{"held": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/held"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held() -> Iterator[HeldServer]:
    server = HeldServer()
    yield server
    server.close()


def api(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=BOUND * 2) as reply:
        return reply.status, json.loads(reply.read())


def test_the_api_answers_while_the_worker_runs_a_task(runtime, held, monkeypatch):
    # The deployment's opening for outbound requests to this test's own server (the egress policy
    # refuses loopback addresses to workflows otherwise).
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")
    runtime.start(http_port=0)
    base = runtime.gateway.url
    workflow = f"""
workflow:
  metadata: {{id: held}}
  tasks:
    - {{id: fetch, type: http, config: {{method: GET, url: "{held.url}"}}}}
"""
    status, started = api(base, "POST", "/runs", {"workflow": workflow, "input": {}})
    assert status == 201
    assert held.arrived.wait(BOUND), "the task never called the held server"
    # The worker's invocation is now inside the task, waiting on the held server.
    answered: dict = {}
    reader = threading.Thread(target=lambda: answered.update(
        view=api(base, "GET", f"/runs/{started['run_id']}"),
        listing=api(base, "GET", "/workflows")), daemon=True)
    reader.start()
    reader.join(BOUND)
    still_held = not held.release.is_set()
    held.release.set()
    assert still_held and "view" in answered and "listing" in answered, "the API waited for the task"
    status, view = answered["view"]
    assert status == 200 and view["tasks"]["fetch"]["status"] == "RUNNING"
    ended = threading.Event()
    for _ in range(int(BOUND / 0.1)):  # the pumps (started above) carry the run on, now the task got its answer
        view = api(base, "GET", f"/runs/{started['run_id']}")[1]
        if view["status"] != "RUNNING":
            break
        ended.wait(0.1)
    assert view["status"] == "COMPLETED", view
    assert view["tasks"]["fetch"]["output"]["status"] == 200


def test_local_mode_answers_while_its_worker_runs_a_task(held, monkeypatch):
    """`loopline run --local` serves the same API: it must answer while its pump is inside a task too."""
    from loopline.running import _LocalModeHost
    from statemachine.compiler import compile_workflow

    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")
    workflow = f"""
workflow:
  metadata: {{id: held_local}}
  tasks:
    - {{id: fetch, type: http, config: {{method: GET, url: "{held.url}"}}}}
"""
    host = _LocalModeHost(log=lambda text: None)
    try:
        run_id = host.start(compile_workflow(workflow, "held.yaml"), {})
        ended: dict = {}
        pump = threading.Thread(target=lambda: ended.update(done=host.run_until(
            lambda: host.mode.engine.store.get_run(run_id).status == "COMPLETED", BOUND * 2)), daemon=True)
        pump.start()
        assert held.arrived.wait(BOUND), "the task never called the held server"
        answered: dict = {}
        reader = threading.Thread(target=lambda: answered.update(
            view=api(host.gateway.url, "GET", f"/runs/{run_id}")), daemon=True)
        reader.start()
        reader.join(BOUND)
        still_held = not held.release.is_set()
        held.release.set()
        assert still_held and "view" in answered, "the API waited for the task"
        assert answered["view"][1]["tasks"]["fetch"]["status"] == "RUNNING"
        pump.join(BOUND * 2)
        assert ended.get("done") is True
    finally:
        host.stop()
