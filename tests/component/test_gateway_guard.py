"""loopline/embedded/gateway.py as a front door (issue #9): whom it answers, and how it holds up to many
clients and to slow ones. Driven over real sockets; the Lambda behind it is a stand-in callable.

Ordering, not timing: waits are bounded only so that a bug fails a test instead of hanging it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from loopline.embedded.gateway import LocalGateway
from loopline.embedded.provision import Route
from tests.component.test_gateway import ROUTES, echo

BOUND = 15.0


def port_of(gw: LocalGateway) -> int:
    return int(gw.url.rsplit(":", 1)[1])


def ask(gw: LocalGateway, method: str = "GET", path: str = "/runs/r1", headers: dict[str, str] | None = None,
        body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """One request with exactly these headers (http.client adds Host only when not given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port_of(gw), timeout=BOUND)
    try:
        names = {k.lower() for k in headers or {}}
        connection.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        data = reply.read()
        kind = reply.getheader("Content-Type") or ""
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(data) if "json" in kind else data
    finally:
        connection.close()


@pytest.fixture
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(ROUTES, echo, allow_hosts=["devbox.test", "proxy.test:9000"]) as gw:
        yield gw


def test_its_own_address_and_localhost_are_answered(gateway):
    port = port_of(gateway)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, headers, _ = ask(gateway, headers={"Host": host})
        assert status == 200, host
        assert headers["x-content-type-options"] == "nosniff"  # added to what the handler answered


@pytest.mark.parametrize("host", ["rebind.example:{port}", "rebind.example", "127.0.0.1:1", "localhost:{other}",
                                  "127.0.0.2:{port}", "proxy.test:9001", "devbox.test.evil:{port}", "", None])
def test_any_other_host_is_403_dns_rebinding_included(gateway, host):
    port = port_of(gateway)
    headers = {"Host": host.format(port=port, other=port + 1)} if host is not None else {"Host": ""}
    status, headers_, body = ask(gateway, headers=headers)
    assert status == 403 and "own address" in body["error"], (host, status, body)
    assert headers_["x-content-type-options"] == "nosniff"


def test_allowed_names_are_answered_on_any_port_unless_one_is_given(gateway):
    for host in ("devbox.test", "devbox.test:8080", "DevBox.Test:1", "proxy.test:9000"):
        assert ask(gateway, headers={"Host": host})[0] == 200, host


def test_a_request_with_no_host_at_all_is_403(gateway):
    with socket.create_connection(("127.0.0.1", port_of(gateway)), timeout=BOUND) as sock:
        sock.sendall(b"GET /runs/r1 HTTP/1.0\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 403") or answer.startswith(b"HTTP/1.1 403"), answer[:80]


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{other}", "http://evil.example", "null", "http://localhost",
                                    "file://", "http://127.0.0.1:{port}.evil.example", "chrome-extension://abc"])
def test_a_foreign_origin_is_403(gateway, origin):
    port = port_of(gateway)
    origin = origin.format(port=port, other=port + 1)
    status, _, body = ask(gateway, "POST", "/runs", {"Host": f"127.0.0.1:{port}", "Origin": origin,
                                                     "Content-Type": "application/json"}, b"{}")
    assert status == 403 and "origin" in body["error"], (origin, status, body)


def test_its_own_origins_are_answered(gateway):
    port = port_of(gateway)
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://devbox.test",
                   "https://devbox.test:8443", "http://proxy.test:9000"):
        status, _, _ = ask(gateway, "POST", "/runs", {"Host": f"127.0.0.1:{port}", "Origin": origin,
                                                      "Content-Type": "application/json"}, b"{}")
        assert status == 201, origin


def test_an_unparsable_request_line_is_a_json_4xx(gateway):
    with socket.create_connection(("127.0.0.1", port_of(gateway)), timeout=BOUND) as sock:
        sock.sendall(b"GET /runs/r1 HTTP/9.9 extra\r\n\r\n")
        answer = _read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head and json.loads(body)["error"]


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


class Blocking:
    """A stand-in Lambda that holds every call until released, counting the threads it sees."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0

    def __call__(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        try:
            if not self.release.wait(BOUND):
                raise RuntimeError("never released")
            return echo(function, event)
        finally:
            with self.lock:
                self.inside -= 1


def test_when_every_worker_is_busy_and_the_line_is_full_the_answer_is_503_not_a_reset():
    held = Blocking()
    with LocalGateway(ROUTES, held, workers=1, max_pending=1) as gw:
        results: dict[str, Any] = {}
        first = threading.Thread(target=lambda: results.setdefault("first", ask(gw)), daemon=True)
        first.start()
        assert held.entered.acquire(timeout=BOUND)  # the one worker is busy
        # Connected before the next one: the server accepts connections in the order they came.
        second = socket.create_connection(("127.0.0.1", port_of(gw)), timeout=BOUND)
        second.sendall(f"GET /runs/r2 HTTP/1.1\r\nHost: 127.0.0.1:{port_of(gw)}\r\nConnection: close\r\n\r\n"
                       .encode())  # waits in line
        status, headers, body = ask(gw, "POST", "/runs", {"Content-Type": "application/json"}, b'{"a": 1}')
        for _ in range(3):  # and so are all others while the line is full
            assert ask(gw)[0] == 503
        held.release.set()
        first.join(BOUND)
        second_answer = _read_all(second)
        second.close()
    assert status == 503 and headers["retry-after"] == "1" and "busy" in body["error"]
    assert headers["x-content-type-options"] == "nosniff"
    assert results["first"][0] == 200 and second_answer.startswith(b"HTTP/1.1 200")


def test_a_burst_is_served_by_a_bounded_pool_and_every_request_is_answered():
    held = Blocking()
    outcomes: list[Any] = []
    with LocalGateway(ROUTES, held, workers=4, max_pending=1000) as gw:
        def client():
            for _ in range(4):
                try:
                    outcomes.append(ask(gw, "POST", "/runs", {"Content-Type": "application/json"}, b"{}")[0])
                except OSError as error:  # a reset or a refused connection: what must not happen
                    outcomes.append(repr(error))

        clients = [threading.Thread(target=client, daemon=True) for _ in range(50)]
        for thread in clients:
            thread.start()
        for _ in range(4):
            assert held.entered.acquire(timeout=BOUND)  # every worker is busy; 46 clients wait in line
        held.release.set()
        for thread in clients:
            thread.join(BOUND * 4)
    assert outcomes == [201] * 200
    assert held.most_inside == 4  # never more at once than the pool's workers


def test_a_stalled_client_is_dropped_and_does_not_hold_others_up():
    with LocalGateway(ROUTES, echo, workers=1, read_timeout=0.5) as gw:
        half_headers = socket.create_connection(("127.0.0.1", port_of(gw)), timeout=BOUND)
        half_headers.sendall(b"POST /runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        # Every other client is answered: the one worker drops the stalled one when its time is up.
        status, _, _ = ask(gw)
        assert status == 200
        assert _read_all(half_headers) == b""  # closed by the server (a read timeout here would raise)
        half_headers.close()

        half_body = socket.create_connection(("127.0.0.1", port_of(gw)), timeout=BOUND)
        half_body.sendall(f"POST /runs HTTP/1.1\r\nHost: 127.0.0.1:{port_of(gw)}\r\nContent-Type: application/json"
                          f"\r\nContent-Length: 100\r\n\r\n{{\"a\": ".encode())
        answer = _read_all(half_body)
        half_body.close()
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in answer

        trickle = socket.create_connection(("127.0.0.1", port_of(gw)), timeout=BOUND)
        dropped = False
        for byte in b"GET /runs/r1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 10_000:
            try:
                trickle.sendall(bytes([byte]))  # each byte within the timeout, the whole never
                if trickle.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    dropped = True
                    break
            except BlockingIOError:
                threading.Event().wait(0.02)
            except OSError:
                dropped = True
                break
        trickle.close()
        assert dropped  # a deadline for the whole request, not for each read
        assert ask(gw)[0] == 200


def test_keep_alive_still_serves_several_requests_on_one_connection():
    with LocalGateway(ROUTES, echo, workers=1) as gw:
        connection = http.client.HTTPConnection("127.0.0.1", port_of(gw), timeout=BOUND)
        for n in range(3):
            connection.request("GET", f"/runs/r{n}")
            assert json.loads(connection.getresponse().read())["pathParameters"] == {"run_id": f"r{n}"}
        connection.close()


def test_routes_under_the_guard_are_unchanged():
    routes = [*ROUTES, Route("POST", "/extra", "Api")]
    with LocalGateway(routes, echo) as gw:
        assert ask(gw, "POST", "/extra", {"Content-Type": "application/json"}, b"{}")[0] == 201


def test_an_idle_kept_alive_connection_lets_its_worker_go():
    with LocalGateway(ROUTES, echo, workers=1, keepalive_timeout=0.2) as gw:
        idle = http.client.HTTPConnection("127.0.0.1", port_of(gw), timeout=BOUND)
        idle.request("GET", "/runs/r1")
        assert idle.getresponse().read()  # kept alive, then nothing more is sent on it
        assert ask(gw)[0] == 200  # the one worker is free for others once the idle one is closed
        assert idle.sock is not None and idle.sock.recv(1) == b""  # closed by the server
        idle.close()
