"""The dev server's HTTP plumbing: a bounded pool of workers, a deadline per request, no resets.

``http.server.ThreadingHTTPServer`` starts a thread per connection and never lets go of one: a
burst of clients overflows its listen backlog of 5 (connections reset), and a client that sends
half a request holds its thread for as long as it likes. Here:

- ``workers`` threads serve connections; up to ``max_pending`` more wait for one, in order;
  beyond that a connection is answered ``503`` (JSON, ``Retry-After``) by a separate thread that
  reads what the client sent first, so closing never turns into a reset.
- every request must arrive whole (request line, headers, body) within ``read_timeout`` seconds,
  however slowly it trickles in: counted from the connection's start for its first request, from
  the first byte for the next ones. A kept-alive connection on which nothing comes for
  ``keepalive_timeout`` seconds is closed, so idle browser connections do not hold the workers. A
  response the client does not read for ``read_timeout`` seconds is abandoned.
- the listen backlog fits a burst of ``BACKLOG`` connections.
"""

from __future__ import annotations

import collections
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

BACKLOG = 1024  # the kernel caps it (net.core.somaxconn, 4096 on current Linux)
REJECT_SECONDS = 1.0  # how long the 503 thread spends on one connection at most
_BUSY = json.dumps({"error": "the server is busy: try again shortly"}).encode()


class _DeadlineSocketIO(io.RawIOBase):
    """A socket's reading side where every receive gives up at ``deadline`` (a monotonic time):
    a request trickling in a byte at a time cannot outlast it."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.deadline: float | None = None
        self._then: float | None = None  # once a first byte came: the deadline is that moment + this

    def readable(self) -> bool:
        return True

    def expect(self, first_byte_within: float, whole_within: float | None = None) -> None:
        """The next request's deadline: ``first_byte_within`` seconds from now; with ``whole_within``,
        moved to that long after its first byte once one has come."""
        self.deadline, self._then = time.monotonic() + first_byte_within, whole_within

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(remaining)
        count = self._sock.recv_into(buffer)
        if count and self._then is not None:
            self.deadline, self._then = time.monotonic() + self._then, None
        return count


class DeadlineRequestHandler(BaseHTTPRequestHandler):
    """A request handler whose reads end at the server's per-request deadline (``read_timeout``)."""

    server: PooledHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the buffered file the base class made: replaced by one with a deadline
        self._raw = _DeadlineSocketIO(self.connection)
        self.rfile = io.BufferedReader(self._raw, io.DEFAULT_BUFFER_SIZE)

    def handle_one_request(self) -> None:
        if getattr(self, "_served", False):  # a kept-alive connection: the next request, if any
            self._raw.expect(min(self.server.keepalive_timeout, self.server.read_timeout), self.server.read_timeout)
        else:
            self._raw.expect(self.server.read_timeout)
        self._served = True
        super().handle_one_request()

    def prepare_write(self) -> None:
        """Writing has its own allowance: a client that reads nothing for that long is dropped."""
        self.connection.settimeout(self.server.read_timeout)


class PooledHTTPServer(HTTPServer):
    request_queue_size = BACKLOG
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[DeadlineRequestHandler], *, workers: int,
                 max_pending: int, read_timeout: float, keepalive_timeout: float) -> None:
        if workers < 1 or max_pending < 0 or read_timeout <= 0 or keepalive_timeout <= 0:
            raise ValueError("workers >= 1, max_pending >= 0 and timeouts > 0 are needed")
        super().__init__(address, handler)
        self.read_timeout, self.keepalive_timeout = read_timeout, keepalive_timeout
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: collections.deque = collections.deque()
        self._idle = 0
        self._closing = False
        self._rejects: collections.deque = collections.deque(maxlen=max(64, max_pending))
        self._rejects_ready = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"loopline-http-{i}", daemon=True)
                         for i in range(workers)]
        self._threads.append(threading.Thread(target=self._turn_away, name="loopline-http-503", daemon=True))
        for thread in self._threads:
            thread.start()

    # -- called by the accepting thread ---------------------------------------
    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._cond:
            # Connections an idle worker is about to take do not count as waiting.
            if len(self._pending) - self._idle < self._max_pending:
                self._pending.append((request, client_address))
                self._cond.notify()
                return
        with self._rejects_ready:
            if len(self._rejects) == self._rejects.maxlen:
                self.shutdown_request(request)  # even the 503 line is full: nothing more can be done
                return
            self._rejects.append(request)
            self._rejects_ready.notify()

    def server_close(self) -> None:
        super().server_close()
        with self._cond:
            self._closing = True
            waiting, self._pending = list(self._pending), collections.deque()
            self._cond.notify_all()
        with self._rejects_ready:
            waiting += [(sock, None) for sock in self._rejects]
            self._rejects.clear()
            self._rejects_ready.notify_all()
        for request, _ in waiting:
            self.shutdown_request(request)

    # -- worker threads ------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._pending and not self._closing:
                    self._cond.wait()
                self._idle -= 1
                if self._closing:
                    return
                request, client_address = self._pending.popleft()
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request: nothing to tell anyone

    def _turn_away(self) -> None:
        while True:
            with self._rejects_ready:
                while not self._rejects and not self._closing:
                    self._rejects_ready.wait()
                if self._closing:
                    return
                sock = self._rejects.popleft()
            _answer_busy(sock)


def _answer_busy(sock: socket.socket) -> None:
    """503 on a connection no worker can take. What the client sent is read first and the socket
    is half-closed before it is closed: closing with unread data makes the kernel send a reset,
    which the client may see before the answer."""
    deadline = time.monotonic() + REJECT_SECONDS
    try:
        received = b""
        sock.settimeout(REJECT_SECONDS / 2)
        while b"\r\n\r\n" not in received and len(received) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"X-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nConnection: close\r\n"
                f"Content-Length: {len(_BUSY)}\r\n\r\n").encode()
        sock.sendall(head + _BUSY)
        sock.shutdown(socket.SHUT_WR)
        while (remaining := deadline - time.monotonic()) > 0:  # until the client closes its side
            sock.settimeout(remaining)
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        sock.close()
