"""moto as an HTTP server on 127.0.0.1, closed to web browsers.

Two local servers speak the AWS APIs over HTTP: the S3 endpoint beside the embedded default (the
task runner's presigned URLs) and `loopline emulator`. moto's own server answers every origin's
CORS preflight with "allowed" and checks no signature, so any web page open on the machine could
read the link-signing key from Secrets Manager, or queue engine messages, once it found the port.
The AWS SDKs never send what browsers always do, so this server refuses, with a 403 and before
moto sees it:

- a request carrying ``Origin`` or any ``Sec-Fetch-*`` header (every current browser sends
  ``Sec-Fetch-*`` on every request, navigations and ``<img>`` loads included), and any ``OPTIONS``
  (a CORS preflight);
- a ``Host`` other than ``127.0.0.1:PORT``, ``localhost:PORT`` or ``BUCKET.localhost:PORT`` (DNS
  rebinding);

and it strips moto's ``Access-Control-*`` headers from every answer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

_BROWSER_HEADERS = ("HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_DEST",
                    "HTTP_SEC_FETCH_USER")


def refusal(environ: dict[str, Any], hosts: Callable[[], set[str]]) -> str | None:
    """Why this request may not reach moto, or None."""
    if environ.get("REQUEST_METHOD") == "OPTIONS":
        return "no CORS preflight is answered here"
    if any(name in environ for name in _BROWSER_HEADERS):
        return "requests from web browsers are refused (Origin or Sec-Fetch headers)"
    host = (environ.get("HTTP_HOST") or "").lower()
    # S3's virtual-hosted style puts the bucket in front: BUCKET.localhost:PORT (.localhost names
    # resolve to loopback in the browser itself, so they cannot be rebound).
    if host not in hosts() and not any(host.endswith("." + own) for own in hosts() if own.startswith("localhost:")):
        return "the Host header is not this server's own address"
    return None


def guard(app: Callable, hosts: Callable[[], set[str]]) -> Callable:
    """The WSGI ``app`` behind the checks above."""

    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        reason = refusal(environ, hosts)
        if reason is not None:
            body = json.dumps({"error": "forbidden", "reason": reason}).encode()
            start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                             ("X-Content-Type-Options", "nosniff")])
            return [body]

        def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *rest)

        return app(environ, start)

    return guarded


class GuardedMotoServer:
    """moto's server (all services, the backends of this process) on 127.0.0.1, behind ``guard``."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> GuardedMotoServer:
        from moto.server import (
            DomainDispatcherApplication,
            MotoRequestHandler,  # type: ignore[attr-defined]
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on our stderr
        app = guard(DomainDispatcherApplication(create_backend_app), self._hosts)
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="moto-server", daemon=True)
        self._thread.start()
        return self

    def _hosts(self) -> set[str]:
        port = self.port
        return {f"127.0.0.1:{port}", f"localhost:{port}"}

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
