"""Signing in to the console on AWS: GET /console/login, /console/auth, /console/logout.

The authorization code flow with PKCE against the user pool's hosted UI, for a public client (no
secret). /console/login sends the browser to Cognito with a fresh ``state`` and the challenge of a
fresh code verifier, both kept in a short-lived cookie scoped to /console/auth; Cognito sends the
browser back to /console/auth with a code, which is exchanged for tokens only when the ``state``
matches that cookie. The ID token becomes the ``loopline_session`` cookie, which the console's
authorizer (functions/console_auth/verify.py) checks on every other console route.

Every cookie is HttpOnly (no script reads the token), Secure, and SameSite=Lax: sent when the
browser navigates here from elsewhere (Cognito's redirect back), never with another site's
cross-site POST; the console's forms carry their own CSRF tokens besides.

In `loopline dev` there is no Cognito and no sign-in: the three routes send the browser to the console.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from functions.console_auth.verify import SESSION_COOKIE

SIGN_IN_COOKIE = "loopline_signin"
SIGN_IN_SECONDS = 600  # time to get through the hosted UI (MFA included) before starting again
TOKEN_TIMEOUT = 10.0  # seconds for Cognito's token endpoint
SCOPES = "openid email"

router = Router()


class SignInFailed(Exception):
    """The token endpoint did not give us an ID token. ``status`` is what the browser is answered."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TokenEndpoint(Protocol):
    def exchange(self, url: str, form: Mapping[str, str]) -> Mapping[str, Any]:
        """POST ``form`` to ``url`` and return the JSON reply, or raise ``SignInFailed``."""
        ...


class HttpTokenEndpoint:
    def __init__(self, timeout: float = TOKEN_TIMEOUT) -> None:
        self._timeout = timeout

    def exchange(self, url: str, form: Mapping[str, str]) -> Mapping[str, Any]:
        request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:  # noqa: S310 (our pool's URL)
                body = reply.read()
        except urllib.error.HTTPError as error:
            # 400 invalid_grant and the like: the code was used, expired or not ours. Start again.
            detail = error.read()[:200].decode("utf-8", "replace")
            raise SignInFailed(400 if error.code < 500 else 502,
                               f"the sign-in service refused the code ({error.code}: {detail})") from None
        except (urllib.error.URLError, OSError) as error:
            raise SignInFailed(502, f"the sign-in service did not answer: {error}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise SignInFailed(502, "the sign-in service answered something other than JSON") from None
        if not isinstance(document, dict):
            raise SignInFailed(502, "the sign-in service answered no token")
        return document


@dataclass(frozen=True)
class SignIn:
    """What the routes need: where the hosted UI is, our client, and how to reach the token endpoint."""

    enabled: bool
    auth_domain: str = ""  # https://{prefix}.auth.{region}.amazoncognito.com
    client_id: str = ""
    public_url: str = ""  # "" derives the API's base URL from the request
    tokens: TokenEndpoint = HttpTokenEndpoint()


_configured: SignIn | None = None


def use(sign_in: SignIn) -> None:
    """Set what the routes use (the handler, once per container; a test, its own)."""
    global _configured
    _configured = sign_in


def _settings() -> SignIn:
    if _configured is None:
        raise RuntimeError("functions.console.auth_routes.use() was not called by the handler")
    return _configured


# ------------------------------------------------------------------ helpers
def _base_url() -> str:
    """The API's base URL as the browser sees it: PublicUrl when set, else execute-api's with the stage."""
    configured = _settings().public_url
    if configured:
        return configured.rstrip("/")
    context = router.current_event.raw_event.get("requestContext") or {}
    return f"https://{context.get('domainName', '')}/{context.get('stage', '')}"


def _console_path() -> str:
    return urlsplit(_base_url()).path.rstrip("/") + "/console"


def _cookie(name: str, value: str, path: str, max_age: int) -> Cookie:
    return Cookie(name=name, value=value, path=path, secure=True, http_only=True, max_age=max_age,
                  same_site=SameSite.LAX_MODE)


def _redirect(location: str, cookies: list[Cookie] | None = None) -> Response:
    return Response(status_code=302, headers={"Location": location, "Cache-Control": "no-store"},
                    cookies=cookies or [])


def _page(status: int, message: str) -> Response:
    login = html.escape(_console_path() + "/login")
    body = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>loopline: sign in</title></head>"
            f"<body><p>{html.escape(message)}</p><p><a href=\"{login}\">Sign in again</a></p></body></html>")
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body,
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                             "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})


def _request_cookie(name: str) -> str:
    headers = router.current_event.headers or {}
    header = next((value for key, value in headers.items() if key.lower() == "cookie"), "")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def code_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


# ------------------------------------------------------------------- routes
@router.get("/console/login")
def login() -> Response:
    settings = _settings()
    if not settings.enabled:
        return _redirect(_console_path())
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)  # both [A-Za-z0-9_-]
    query = urlencode({
        "response_type": "code", "client_id": settings.client_id, "redirect_uri": _base_url() + "/console/auth",
        "scope": SCOPES, "state": state, "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    })
    pending = _cookie(SIGN_IN_COOKIE, f"{state}.{verifier}", _console_path() + "/auth", SIGN_IN_SECONDS)
    return _redirect(f"{settings.auth_domain}/oauth2/authorize?{query}", [pending])


@router.get("/console/auth")
def auth() -> Response:
    settings = _settings()
    if not settings.enabled:
        return _redirect(_console_path())
    query = router.current_event.query_string_parameters or {}
    if query.get("error"):
        return _page(400, f"Sign-in did not complete: {query.get('error_description') or query['error']}.")
    state, _, verifier = _request_cookie(SIGN_IN_COOKIE).partition(".")
    given, code = query.get("state") or "", query.get("code") or ""
    # Only the browser that started this sign-in holds the matching cookie (a forged link, or one
    # replayed in another browser, fails here before the code is spent).
    if not state or not verifier or not code or not hmac.compare_digest(state, given):
        return _page(400, "This sign-in link is not the one this browser started, or it has expired.")
    try:
        tokens = settings.tokens.exchange(f"{settings.auth_domain}/oauth2/token", {
            "grant_type": "authorization_code", "client_id": settings.client_id, "code": code,
            "redirect_uri": _base_url() + "/console/auth", "code_verifier": verifier})
    except SignInFailed as failure:
        return _page(failure.status, f"Sign-in failed: {failure}.")
    id_token, lifetime = tokens.get("id_token"), tokens.get("expires_in")
    if not isinstance(id_token, str) or not id_token or not isinstance(lifetime, int) or lifetime <= 0:
        return _page(502, "Sign-in failed: the sign-in service answered no ID token.")
    console = _console_path()
    return _redirect(_base_url() + "/console", [
        _cookie(SESSION_COOKIE, id_token, console, lifetime),
        _cookie(SIGN_IN_COOKIE, "", console + "/auth", 0),
    ])


@router.get("/console/logout")
def logout() -> Response:
    settings = _settings()
    cleared = [_cookie(SESSION_COOKIE, "", _console_path(), 0)]
    if not settings.enabled:
        return _redirect(_console_path(), cleared)
    # The hosted UI ends its own session too, then sends the browser to the console, which asks for a sign-in.
    query = urlencode({"client_id": settings.client_id, "logout_uri": _base_url() + "/console"})
    return _redirect(f"{settings.auth_domain}/logout?{query}", cleared)
