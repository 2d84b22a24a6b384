"""A forward proxy on 127.0.0.1 that puts the egress policy in front of a browser.

Chromium resolves and connects by itself, so checking the task's URL before
navigating covers neither the redirects it follows nor the sub-resources,
fetches and WebSockets a page asks for. Started with ``--proxy-server`` pointing
here (and ``--proxy-bypass-list=<-loopback>``, without which Chromium would still
go to loopback addresses directly), every connection the browser makes arrives
here as ``CONNECT host:port`` (https, wss) or a request for an absolute
``http://`` URL, and is opened with :func:`egress.connect`: resolved once,
checked, and connected to the checked address. TLS stays between Chromium and
the site, so certificate checks are Chromium's, for the name.

One proxy serves one browser session; a refused request is remembered in
``denied`` so the task can fail with ``EgressDenied`` instead of a navigation error.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import egress
from .base import TaskFailure

_HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class EgressProxy:
    def __init__(self, timeout: float, policy: egress.EgressPolicy) -> None:
        self.denied: list[str] = []
        self.timeout = timeout
        self.policy = policy
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def open(self, host: str, port: int) -> socket.socket | None:
        """A socket to ``host:port`` if the policy allows it; None (and the reason kept) if it does not."""
        try:
            upstream = egress.connect((host, port), self.timeout, policy=self.policy)
        except TaskFailure as exc:
            with self._lock:
                self.denied.append(exc.message)
            return None
        with self._lock:
            self._sockets.add(upstream)
        return upstream

    def chromium_flags(self) -> tuple[str, ...]:
        """Every connection through this proxy, loopback included (Chromium bypasses proxies for it by
        default); Chromium resolves no name itself, and WebRTC sends no UDP around the proxy."""
        return (f"--proxy-server=http://{self.address}", "--proxy-bypass-list=<-loopback>",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--force-webrtc-ip-handling-policy", "--webrtc-ip-handling-policy=disable_non_proxied_udp")

    def forget_refusals(self) -> None:
        with self._lock:
            self.denied.clear()

    def raise_if_refused(self) -> None:
        """A navigation that failed because this proxy refused a connection is ``EgressDenied``."""
        with self._lock:
            if self.denied:
                raise TaskFailure(egress.EGRESS_DENIED, self.denied[0])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for sock in self._sockets:  # ends the relays still running
                _close(sock)
            self._sockets.clear()

    def __enter__(self) -> "EgressProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    @property
    def proxy(self) -> EgressProxy:
        return self.server.proxy  # type: ignore[attr-defined]

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if not host or not port.isdigit():
            self._refuse(400, "CONNECT needs host:port")
            return
        upstream = self._open(host.strip("[]"), int(port))
        if upstream is None:
            return
        self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.wfile.flush()
        self._relay(upstream)

    def _plain(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self._refuse(400, "only absolute http:// URLs (and CONNECT) go through this proxy")
            return
        try:
            port = parts.port or 80
        except ValueError:
            self._refuse(400, "bad port")
            return
        upstream = self._open(parts.hostname, port)
        if upstream is None:
            return
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        head = [f"{self.command} {target} HTTP/1.1"]
        head += [f"{name}: {value}" for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP]
        # One request per upstream connection: the next request on this client connection may name
        # another host, which must be checked on its own.
        head.append("Connection: close")
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        self._relay(upstream)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _plain

    def _open(self, host: str, port: int) -> socket.socket | None:
        try:
            upstream = self.proxy.open(host, port)
        except OSError as exc:
            if self.command == "CONNECT":
                self._refuse(502, f"cannot connect to {host}:{port}: {exc}")
            else:
                # As a direct connection would: no answer, so Chromium fails the navigation
                # (ERR_EMPTY_RESPONSE) instead of rendering a proxy's 502 page as the site's.
                self.close_connection = True
            return None
        if upstream is None:
            if self.command == "CONNECT":
                self._refuse(403, "refused by the egress policy")
            else:
                # No answer at all: Chromium then fails the navigation (ERR_EMPTY_RESPONSE), as it does for
                # a refused CONNECT, instead of showing a proxy's 403 page as if the site had answered.
                self.close_connection = True
        return upstream

    def _refuse(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _relay(self, upstream: socket.socket) -> None:
        """Bytes both ways until either side closes; the client's bytes already buffered go first."""
        client = self.connection

        def to_upstream() -> None:
            try:
                while True:
                    data = self.rfile.read1(65536)
                    if not data:
                        break
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        sender = threading.Thread(target=to_upstream, daemon=True)
        sender.start()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)
            self.close_connection = True
