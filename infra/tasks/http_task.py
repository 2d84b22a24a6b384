"""The one HTTP client every task type and provider that speaks HTTP uses (stdlib urllib).
The ``http`` task type itself is infra/tasks/types/http.py.

Every connection it opens, redirects included, goes through the egress policy
(``egress.py``): the host is resolved once, checked, and the socket connected to
the checked address; the Host header, TLS SNI and certificate check keep the name.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

from . import egress
from .base import TaskFailure
from .common import INVALID_CONFIG
from .egress import EgressPolicy

DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
USER_AGENT = "loopline"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    url: str  # after redirects

    def text(self) -> str:
        return self.body.decode(_charset(self.headers.get("content-type", "")), errors="replace")

    def is_json(self) -> bool:
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        return kind == "application/json" or kind.endswith("+json")


def _charset(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type or "text/plain"
    charset = message.get_content_charset() or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def check_url(url: str, key: str = "url") -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be an http:// or https:// URL, not {url!r}")
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
        egress.canonical_host(parts.hostname)
    except ValueError as exc:
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}': {exc}") from None
    return url


def _ascii_host(url: str) -> str:
    """The URL with an internationalised host name in its IDNA form, which is what is resolved and sent
    as Host (http.client cannot send a non-ASCII Host header)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or parts.hostname.isascii():
        return url
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + egress.canonical_host(parts.hostname)
    netloc += f":{parts.port}" if parts.port is not None else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise TaskFailure("HttpError", f"{code} redirect to a URL that is not http(s): {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# http.client opens its socket through ``_create_connection``; pointing that hook at egress.connect is
# how every connection (each redirect is a new one) is resolved, checked and pinned to the checked address.
class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, policy: EgressPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(egress.connect, policy=policy)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, policy: EgressPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(egress.connect, policy=policy)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: EgressPolicy):
        super().__init__()
        self.policy = policy

    def http_open(self, req):
        return self.do_open(functools.partial(_CheckedHTTPConnection, policy=self.policy), req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: EgressPolicy):
        super().__init__()
        self.policy = policy

    def https_open(self, req):
        return self.do_open(functools.partial(_CheckedHTTPSConnection, policy=self.policy), req,
                            context=self._context)


def _opener(policy: EgressPolicy) -> urllib.request.OpenerDirector:
    # No proxies from the environment: through a proxy, the address checked would be the proxy's, not the target's.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _CheckedHTTPHandler(policy),
                                       _CheckedHTTPSHandler(policy), _Redirects())


def _headers(raw) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def fetch(method: str, url: str, *, policy: EgressPolicy, headers: dict[str, str] | None = None,
          data: bytes | None = None, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_RESPONSE_BYTES,
          connection_error: str = "HttpConnectionError") -> HttpResponse:
    """One request, to what ``policy`` allows. Any status comes back as a response; a timeout is
    ``TaskTimeout``, a connection failure ``connection_error``, a body over ``max_bytes`` ``HttpResponseTooLarge``."""
    check_url(url)
    request = urllib.request.Request(_ascii_host(url), data=data, method=method.upper())
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        try:
            response = _opener(policy).open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:  # a status >= 400 still has a response
            response = exc
        with response:
            body = response.read(max_bytes + 1) or b""
            status = response.status if hasattr(response, "status") else response.code
            reason = getattr(response, "reason", "") or http.client.responses.get(status, "")
            final_url = response.geturl() if hasattr(response, "geturl") else url
            head = _headers(response.headers or {})
    except TaskFailure as exc:
        if exc.error_type != egress.EGRESS_DENIED:
            raise
        raise TaskFailure(exc.error_type, f"{method.upper()} {url}: {exc.message}") from None
    except (TimeoutError, socket.timeout) as exc:
        raise TaskFailure("TaskTimeout", f"{method.upper()} {url}: no response within {timeout:g}s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise TaskFailure("TaskTimeout", f"{method.upper()} {url}: no response within {timeout:g}s") from exc
        raise TaskFailure(connection_error, f"{method.upper()} {url}: {exc.reason}") from exc
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise TaskFailure(connection_error, f"{method.upper()} {url}: {type(exc).__name__}: {exc}") from exc
    if len(body) > max_bytes:
        raise TaskFailure("HttpResponseTooLarge", f"{method.upper()} {url}: response larger than {max_bytes} bytes")
    return HttpResponse(status=status, reason=str(reason), headers=head, body=body, url=final_url)


def encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    """dict/list/number/bool -> JSON (with a JSON content type unless one is set); str -> UTF-8."""
    if body is None:
        return None
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(body, str):
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode("utf-8")
    if not has_type:
        headers["Content-Type"] = "application/json"
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def response_data(response: HttpResponse) -> Any:
    if response.is_json():
        raw = response.text()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return response.text()
