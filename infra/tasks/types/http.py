"""The ``http`` task type: one request to a URL the egress policy allows (the client: infra/tasks/http_task.py)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Protocol

from .. import common
from ..base import TaskFailure
from ..common import INVALID_CONFIG
from ..egress import EgressPolicy
from ..http_task import DEFAULT_TIMEOUT, METHODS, HttpResponse, check_url, encode_body, fetch, response_data
from ..runtime import Provider, TaskCall, TaskRuntime


class HttpClient(Protocol):
    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout: float) -> HttpResponse: ...


class UrllibClient:
    def __init__(self, policy: EgressPolicy):
        self.policy = policy

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout: float) -> HttpResponse:
        return fetch(method, url, policy=self.policy, headers=headers, data=body, timeout=timeout)


def run(call: TaskCall) -> dict[str, Any]:
    config = call.config
    url = check_url(common.text(config, "url", required=True) or "")
    headers = {str(k): common.text({"v": v}, "v") or "" for k, v in common.mapping(config, "headers").items()}
    query = common.mapping(config, "query") or common.mapping(config, "params")
    if query:
        pairs = []
        for name, value in query.items():
            for item in value if isinstance(value, list) else [value]:
                pairs.append((str(name), common.text({"v": item}, "v") or ""))
        url += ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(pairs)
    body = encode_body(config.get("body"), headers)
    method = (common.text(config, "method") or ("POST" if body is not None else "GET")).upper()
    if method not in METHODS:
        raise TaskFailure(INVALID_CONFIG, f"'config.method' must be one of {', '.join(METHODS)}, not {method!r}")
    wait = common.timeout(config, call.meta, DEFAULT_TIMEOUT)
    client: HttpClient = call.provider()
    response = client.request(method, url, headers, body, wait)
    if response.status >= 400:
        raise TaskFailure("HttpError", f"{response.status} {response.reason}: {common.excerpt(response.body)}")
    return {"status": response.status, "headers": response.headers, "data": response_data(response)}


RUNTIME = TaskRuntime(run=run, providers=(
    Provider("urllib", lambda settings: UrllibClient(settings.egress()), default_on=("aws", "local")),))
