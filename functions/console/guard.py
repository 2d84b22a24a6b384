"""Who is signed in to the console, and whether a form post may act in their name.

A console action is a form post (application/x-www-form-urlencoded): a browser sends one cross-site
without asking, so each carries a CSRF token, and a post a browser marks as coming from another
site is refused before the token is even looked at.

- The token is an HMAC (the engine's link key, ``LinkSigner.csrf``) of
  ``console:{actor}:{target}:{action}``, each part percent-encoded so no two different triples give
  the same text. Only a page the console served to that actor carries it, it is good for that one
  action on that one run (or approval), and it needs no storage. It does not expire: a page left
  open still works, and a leaked token lets its holder do only what its actor could do from the page.
- ``Sec-Fetch-Site`` (sent by every current browser) must be ``same-origin`` when present, and
  ``Origin``, when present, must name the host the request was sent to. A client that is not a
  browser sends neither and still needs the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, urlsplit

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from functions.api.history import MAX_TEXT, actor
from infra.links import LinkSigner

from .layout import PageError

FORM = "application/x-www-form-urlencoded"


def console_actor(event: APIGatewayProxyEvent) -> str:
    """The signed-in user's name. On AWS the console's authorizer (a Lambda authorizer reading the
    sign-in cookie) puts it in ``requestContext.authorizer.principalId``, which API Gateway sets and a
    client cannot; with no authorizer in front (``loopline dev``) it is the API's actor: the dev
    server's local user, or the IAM principal."""
    authorizer = (event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    principal = authorizer.get("principalId") if isinstance(authorizer, dict) else None
    if isinstance(principal, str) and principal.strip():
        return principal[:MAX_TEXT]
    return actor(event)


def csrf_token(signer: LinkSigner, who: str, target: str, action: str) -> str:
    bound = ":".join(quote(part, safe="") for part in (who, target, action))
    return signer.csrf(f"console:{bound}")


def form_of(event: APIGatewayProxyEvent) -> dict[str, str]:
    """The posted form's fields (the first value of each; absent fields are absent)."""
    fields = parse_qs(event.decoded_body or "", keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def is_form(headers: Mapping[str, str]) -> bool:
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower() == FORM


def cross_site(headers: Mapping[str, str]) -> str | None:
    """Why the browser says this request came from another site, or None."""
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() != "same-origin":
        return f"the browser says this request came from another site (Sec-Fetch-Site: {fetch_site[:40]})"
    origin = headers.get("Origin")
    if origin is not None:
        host = (headers.get("Host") or "").strip().lower()
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or parts.path or not host or parts.netloc.lower() != host:
            return f"the request came from another origin ({origin[:100]})"
    return None


def refusal(event: APIGatewayProxyEvent, signer: LinkSigner, who: str, target: str, action: str,
            form: Mapping[str, str]) -> str | None:
    """Why this form post may not act (a 403), or None when it may."""
    foreign = cross_site(event.headers)
    if foreign is not None:
        return foreign
    # As bytes: compare_digest refuses a str holding non-ASCII characters (a TypeError).
    sent = (form.get("csrf") or "").encode("utf-8", "replace")
    if not hmac.compare_digest(sent, csrf_token(signer, who, target, action).encode()):
        return "this form did not come from a console page for you and this action (reload the page and try again)"
    return None


def checked_form(event: APIGatewayProxyEvent, signer: LinkSigner, who: str, target: str,
                 action: str) -> dict[str, str]:
    """The posted form, once it is one (else a 415 page) and may act (else a 403 page)."""
    if not is_form(event.headers):
        raise PageError(415, "Not a form", "the console's actions are form posts (application/x-www-form-urlencoded)")
    form = form_of(event)
    why = refusal(event, signer, who, target, action, form)
    if why is not None:
        raise PageError(403, "This action was refused", why)
    return form
