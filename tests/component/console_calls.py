"""Calling the console's handler (functions/console/app.py) as API Gateway would, against local mode's
engine: the event of a route, a form post with its CSRF token, and reading the answer."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import quote, urlencode

from loopline.embedded.runtime import LambdaContext
from tests.conftest import api_event

for _name, _value in {"POWERTOOLS_METRICS_NAMESPACE": "Loopline", "POWERTOOLS_SERVICE_NAME": "loopline",
                      "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
    os.environ.setdefault(_name, _value)

HOST = "abc123.execute-api.us-east-1.amazonaws.com"  # the events' Host
# The ways a form post is forged (forged()): each must be refused, 403 (415 for "not a form").
FORGERIES = ("missing", "wrong", "other action", "other target", "other actor", "cross-site origin", "null origin",
             "sec-fetch-site", "not a form")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def csrf(self, form_class: str, action: str = "") -> str:
        """The CSRF value of the page's first form of ``form_class`` (and data-action ``action``)."""
        which = f'data-action="{action}"' if action else ""
        pattern = rf'<form class="{form_class}"[^>]*{which}[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"'
        found = re.search(pattern, self.body)
        assert found, f"no {form_class} {action} form in the page"
        return unescape(found.group(1))


def call(method: str, resource: str, params: dict[str, str] | None = None, *, query: dict[str, str] | None = None,
         form: dict[str, str] | None = None, headers: dict[str, str] | None = None, user: str = "ada",
         principal: str | None = None, runtime: Any = None, repeated: dict[str, list[str]] | None = None) -> Answer:
    """One request to a console route. ``resource``: the route (/console/runs/{run_id}); ``params`` fill it
    in. ``user``: the local user the dev server's gateway names; ``principal``: an authorizer's user.
    ``runtime``: an embedded stack (loopline/embedded/runtime.py) to invoke ConsoleFunction on, under the
    template's IAM statements; else its handler is called here. ``repeated``: a parameter given more than
    once (a multiple select's), as API Gateway hands it on: each value in the multi-value parameters, the
    last in the single-value ones."""
    from functions.console.app import lambda_handler

    # As a browser sends them (each segment percent-encoded) and API Gateway hands them on (not decoded).
    params = {name: quote(value, safe="") for name, value in (params or {}).items()}
    path = resource
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    event: dict[str, Any] = api_event("api_get_run.json")
    event.update(resource=resource, path=path, httpMethod=method, pathParameters=params or None,
                 queryStringParameters={**(query or {}), **{k: v[-1] for k, v in (repeated or {}).items()}} or None,
                 multiValueQueryStringParameters={**{k: [v] for k, v in (query or {}).items()}, **(repeated or {})}
                 or None, body=None)
    event["requestContext"]["identity"]["user"] = user
    event["requestContext"]["requestId"] = str(uuid.uuid4())  # the audit log keeps one entry per request id
    if principal is not None:
        event["requestContext"]["authorizer"] = {"principalId": principal}
    sent = {"Accept": "text/html", **(headers or {})}
    if form is not None:
        event["body"] = urlencode(form)
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    event["headers"] = {**event["headers"], **sent}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    reply = (runtime.invoke("ConsoleFunction", event) if runtime is not None
             else lambda_handler(event, LambdaContext(function_name="ConsoleFunction")))
    merged = {k: v[-1] for k, v in (reply.get("multiValueHeaders") or {}).items()}
    merged.update(reply.get("headers") or {})
    return Answer(reply["statusCode"], merged, reply.get("body") or "")


def forged(kind: str, token: str, others: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str], str]:
    """(form fields, headers, user) of a post forged as ``kind``, one of FORGERIES; ``token``: the right one,
    ``others``: the token of another action ("other action") or of another run or version ("other target")."""
    fields, headers, user = {"csrf": token}, {}, "ada"
    if kind == "missing":
        del fields["csrf"]
    elif kind == "wrong":
        fields["csrf"] = "0" * len(token)
    elif kind in others:
        fields["csrf"] = others[kind]
    elif kind == "other actor":
        user = "mallory"
    elif kind == "cross-site origin":
        headers = {"Origin": "https://evil.example"}
    elif kind == "null origin":
        headers = {"Origin": "null"}
    elif kind == "sec-fetch-site":
        headers = {"Sec-Fetch-Site": "cross-site", "Origin": f"https://{HOST}"}
    elif kind == "not a form":
        headers = {"Content-Type": "text/plain"}
    return fields, headers, user
