"""The user pool's public keys over HTTPS, kept for the life of the container."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from functions.console_auth.verify import issuer

FETCH_TIMEOUT = 5.0  # seconds; the authorizer itself has API Gateway's 29 s, the browser less patience
REFRESH_INTERVAL = 60.0  # a token naming an unknown key refetches at most this often (no refetch flood)


class KeysUnavailable(Exception):
    """The key set could not be fetched: the authorizer fails (API Gateway answers 500), it does not
    pretend the user is signed out."""


class HttpKeySource:
    def __init__(self, region: str, user_pool_id: str, *, timeout: float = FETCH_TIMEOUT,
                 url: str | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self._url = url or issuer(region, user_pool_id) + "/.well-known/jwks.json"
        self._timeout, self._now = timeout, now
        self._cached: Mapping[str, Any] | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def jwks(self, *, refresh: bool = False) -> Mapping[str, Any]:
        with self._lock:
            stale = refresh and self._now() - self._fetched_at >= REFRESH_INTERVAL
            if self._cached is None or stale:
                self._cached, self._fetched_at = self._fetch(), self._now()
            return self._cached

    def _fetch(self) -> Mapping[str, Any]:
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout) as reply:  # noqa: S310 (https URL of ours)
                document = json.loads(reply.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise KeysUnavailable(f"cannot read the user pool's keys at {self._url}: {error}") from error
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeysUnavailable(f"{self._url} answered no key set")
        return document
