"""A local API Gateway: HTTP requests in, REST (v1) Lambda proxy events out.

moto does not route API Gateway requests, so the local runtime serves the
template's routes itself and hands each request to the same handler code that
runs on AWS, in the event shape API Gateway sends.

It listens on 127.0.0.1, which every web page the user opens can also reach. So
before anything else it refuses (403) a request whose ``Host`` is not this
server (127.0.0.1 or localhost with its port, or a name allowed by
``allow_hosts``): a page whose own name was re-bound to 127.0.0.1 (DNS
rebinding) sends its own name. It refuses as well a request whose ``Origin``,
which browsers add to every cross-origin request and to every POST, is not one
of this server's own origins. Connections are served by a bounded pool with a
deadline per request (loopline/embedded/http_server.py).
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.json_http import NOSNIFF
from loopline.embedded.http_server import DeadlineRequestHandler, PooledHTTPServer
from loopline.embedded.provision import Route

_LOG = logging.getLogger("loopline.gateway")
DEFAULT_MAX_BODY = 6 * 1024 * 1024  # a Lambda request payload is at most 6 MB
DEFAULT_WORKERS = 16  # connections served at once; more wait (max_pending), then 503
DEFAULT_MAX_PENDING = 512
DEFAULT_READ_TIMEOUT = 20.0  # seconds for a whole request to arrive
DEFAULT_KEEPALIVE_TIMEOUT = 5.0  # seconds a kept-alive connection may sit idle between requests
LOCAL_NAMES = ("127.0.0.1", "localhost")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]*\+(json|xml))\b)", re.I)

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


_LOCAL_USER = _local_user()


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    specificity: tuple[int, int]  # more literal segments win, as in API Gateway


def _compile(route: Route) -> _CompiledRoute:
    parts, names, literals = [], [], 0
    for segment in route.path.strip("/").split("/") if route.path.strip("/") else []:
        match = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
        if match is None:
            parts.append(re.escape(segment))
            literals += 1
        else:
            names.append(match.group(1))
            parts.append(f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})")
    pattern = re.compile("^/" + "/".join(parts) + "/?$")
    greedy = 1 if route.path.endswith("+}") else 0
    return _CompiledRoute(route, pattern, tuple(names), (literals, -greedy))


class LocalGateway:
    """Serves ``routes`` on 127.0.0.1 by calling ``invoke(function_id, event)``."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoke,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        stage: str = "Prod",
        max_body: int = DEFAULT_MAX_BODY,
        log: Callable[[str], None] | None = None,
        allow_hosts: Sequence[str] = (),
        workers: int = DEFAULT_WORKERS,
        max_pending: int = DEFAULT_MAX_PENDING,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ) -> None:
        self._routes = sorted((_compile(r) for r in routes), key=lambda c: c.specificity, reverse=True)
        self._invoke, self._stage, self._max_body, self._log = invoke, stage, max_body, log
        self._server = PooledHTTPServer((host, port), _make_handler(self), workers=workers,
                                        max_pending=max_pending, read_timeout=read_timeout,
                                        keepalive_timeout=keepalive_timeout)
        self._port = str(self._server.server_address[1])
        self._local_names = {*LOCAL_NAMES, host.lower()}
        self._allowed = {_host_and_port(value) for value in allow_hosts if value.strip()}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalGateway:
        if self._thread is None:
            # A short poll interval keeps stop() (and test teardown) quick.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.1,), name="loopline-gateway", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- who may ask (called from server threads) -------------------------------
    def host_allowed(self, host: str | None) -> bool:
        """127.0.0.1 or localhost with this server's port, or an allowed name (any port unless it
        was given with one)."""
        if not host:
            return False
        name, port = _host_and_port(host)
        if (name, port) in self._allowed or (name, None) in self._allowed:
            return True
        return name in self._local_names and (port == self._port or (port is None and self._port == "80"))

    def origin_allowed(self, origin: str | None) -> bool:
        """No Origin (not a browser, or a same-origin navigation), or one of this server's own."""
        if origin is None:
            return True
        parts = urlsplit(origin.strip())
        return parts.scheme in ("http", "https") and not parts.path and self.host_allowed(parts.netloc)

    def _refuse_foreign(self, request: BaseHTTPRequestHandler) -> None:
        host = request.headers.get("Host")
        if not self.host_allowed(host):
            raise HttpError(403, "this server answers only to its own address: 127.0.0.1 or localhost with its "
                                 "port (loopline dev --allow-host NAME adds a name)", host=(host or "")[:200])
        origin = request.headers.get("Origin")
        if not self.origin_allowed(origin):
            raise HttpError(403, "requests from another origin are refused", origin=origin[:200])

    # -- request handling (called from server threads) -----------------------
    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = set()
        for compiled in self._routes:
            found = compiled.pattern.match(path)
            if found is None:
                continue
            if compiled.route.method in (method, "ANY"):
                return compiled.route, {name: found.group(name) for name in compiled.names}
            allowed.add(compiled.route.method)
        if allowed:
            raise HttpError(405, "method not allowed", method=method, allowed=sorted(allowed))
        raise HttpError(404, "not found", method=method, path=path)

    def build_event(self, request: BaseHTTPRequestHandler, route: Route, params: dict[str, str],
                    body: bytes) -> dict[str, Any]:
        url = urlsplit(request.path)
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers[name] = value  # API Gateway keeps the last of repeated headers
            multi_headers.setdefault(name, []).append(value)
        query = parse_qsl(url.query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for name, value in query:
            multi_query.setdefault(name, []).append(value)
        content_type = request.headers.get("Content-Type", "")
        text_body, is_base64 = _body_for_event(body, content_type)
        now = time.time()
        request_id = str(uuid.uuid4())
        return {
            "resource": route.path,
            "path": url.path,
            "httpMethod": request.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": dict(query) or None,
            "multiValueQueryStringParameters": multi_query or None,
            # Raw, as REST APIs pass them: not percent-decoded.
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": route.path,
                "resourcePath": route.path,
                "httpMethod": request.command,
                "extendedRequestId": request_id,
                "requestTime": formatdate(now, usegmt=True),
                "path": f"/{self._stage}{url.path}",
                "accountId": "123456789012",
                "protocol": request.request_version,
                "stage": self._stage,
                "domainPrefix": "127",
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": request.client_address[0],
                    "userAgent": request.headers.get("User-Agent"),
                    # Who asks: the dev server's own user (on AWS, the IAM principal), for the audit log.
                    "accountId": None, "caller": None, "user": _LOCAL_USER, "userArn": None,
                    "cognitoIdentityPoolId": None, "cognitoIdentityId": None,
                    "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
                    "accessKey": None, "apiKey": None, "apiKeyId": None,
                },
                "domainName": request.headers.get("Host", self.url.split("//", 1)[1]),
                "apiId": "local",
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        status = 500
        body_read = False
        try:
            self._refuse_foreign(request)
            body = self._read_body(request)
            body_read = True
            route, params = self.match(request.command, urlsplit(request.path).path)
            event = self.build_event(request, route, params, body)
            try:
                response = self._invoke(route.function, event)
                status, headers, payload = _from_proxy_response(response)
            except Exception:
                _LOG.exception("handler %s failed on %s %s", route.function, request.command, request.path)
                raise HttpError(502, "internal error") from None
        except HttpError as error:
            status, payload = error.status, json.dumps(error.body).encode()
            headers = [("Content-Type", "application/json")]
            if error.status == 405:
                headers.append(("Allow", ", ".join(error.body["allowed"])))
            if not body_read:
                request.close_connection = True  # the unread body is still on the socket
                headers.append(("Connection", "close"))
        if not any(name.lower() == NOSNIFF[0].lower() for name, _ in headers):
            headers.append(NOSNIFF)  # every answer: the browser must not guess another type
        _write(request, status, headers, payload)
        if self._log is not None:
            elapsed = (time.monotonic() - started) * 1000
            self._log(f"{request.command} {request.path} -> {status} ({elapsed:.1f} ms)")

    def _read_body(self, request: BaseHTTPRequestHandler) -> bytes:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            try:
                return _read_chunked(request, self._max_body)
            except TimeoutError:
                raise HttpError(408, "the request body did not arrive in time") from None
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length")
        try:
            return self._read_length(request, length)
        except TimeoutError:
            raise HttpError(408, "the request body did not arrive in time") from None

    def _read_length(self, request: BaseHTTPRequestHandler, length: int) -> bytes:
        if length > self._max_body:
            # Drain a modest excess so the client, still sending, can read the
            # 413 instead of a connection reset; beyond that just hang up.
            if length <= 8 * self._max_body:
                remaining = length
                while remaining > 0 and (chunk := request.rfile.read(min(remaining, 65536))):
                    remaining -= len(chunk)
            raise HttpError(413, "request body too large", limit=self._max_body)
        body = request.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise HttpError(400, "the request body ended early")
        return body


def _read_chunked(request: BaseHTTPRequestHandler, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        line = request.rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            request.close_connection = True
            raise HttpError(400, "bad chunked encoding") from None
        if size == 0:
            while request.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > limit:
            raise HttpError(413, "request body too large", limit=limit)
        chunks.append(request.rfile.read(size))
        request.rfile.readline(1024)


def _body_for_event(body: bytes, content_type: str) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if not content_type or _TEXT_TYPES.match(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass  # labelled text, but it is not: hand it over untouched
    return base64.b64encode(body).decode("ascii"), True


def _from_proxy_response(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A proxy response as API Gateway renders it; malformed ones are the handler's fault."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise TypeError(f"malformed proxy response: {type(response).__name__} without an int statusCode")
    headers: list[tuple[str, str]] = []
    multi = response.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    seen = {name.lower() for name in multi}
    for name, value in (response.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    return response["statusCode"], headers, payload


def _host_and_port(value: str) -> tuple[str, str | None]:
    """``Name:8080`` -> ("name", "8080"); ``[::1]:80`` -> ("::1", "80"); no port -> (name, None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, (rest[1:] if rest.startswith(":") else None) or None
    name, _, port = value.partition(":")
    return name, port or None


def _write(request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
    if isinstance(request, DeadlineRequestHandler):
        request.prepare_write()
    request.send_response(status)
    for name, value in headers:
        # Framing is ours to set: the body is always sent whole, with its length.
        if name.lower() not in ("content-length", "transfer-encoding"):
            request.send_header(name, value)
    request.send_header("Content-Length", str(len(payload)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(payload)


def _make_handler(gateway: LocalGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(DeadlineRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as browsers and SDKs expect
        server_version = "loopline-gateway"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet by default; LocalGateway(log=...) reports requests

        def _dispatch(self) -> None:
            gateway.handle(self)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # A request line or header the server cannot parse: JSON like every other answer.
            self.close_connection = True
            if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
                self.request_version = "HTTP/1.1"  # unparsed: answer with a status line all the same
            body = json.dumps({"error": message or HTTPStatus(code).phrase}).encode()
            _write(self, code, [("Content-Type", "application/json"), NOSNIFF, ("Connection", "close")], body)

    for method in _METHODS:
        setattr(Handler, f"do_{method}", Handler._dispatch)
    return Handler
