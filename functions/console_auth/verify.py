"""The console's sign-in check: is this cookie a Cognito ID token of our user pool and app client?

API Gateway's Cognito authorizer reads a header only, and a browser's navigation sends none, so the
console's token travels in a cookie and this module checks it for the Lambda REQUEST authorizer
(functions/console_auth/app.py). What it needs from outside, the pool's public keys, comes through
the ``KeySource`` port: the authorizer fetches them over HTTPS, the tests hand in moto's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

import jwt

SESSION_COOKIE = "loopline_session"
LEEWAY_SECONDS = 30  # clock skew tolerated on exp, nbf and iat


class KeySource(Protocol):
    """The user pool's JSON Web Key Set, as Cognito serves it at {issuer}/.well-known/jwks.json."""

    def jwks(self, *, refresh: bool = False) -> Mapping[str, Any]:
        """The key set; ``refresh`` asks for a fresh copy (a token names a key the cached set lacks)."""
        ...


class Refused(Exception):
    """The request carries no valid session. The message says why, for the log only: the browser is
    told no more than "sign in"."""


@dataclass(frozen=True)
class Identity:
    principal: str  # the user's email, else their Cognito user name: who the console says acted
    sub: str
    email: str


def issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def session_token(cookie_header: str | None) -> str:
    """The ID token in the ``loopline_session`` cookie of a ``Cookie`` header."""
    if not cookie_header:
        raise Refused("no Cookie header")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError as error:
        raise Refused(f"unreadable Cookie header: {error}") from None
    morsel = jar.get(SESSION_COOKIE)
    if morsel is None or not morsel.value:
        raise Refused(f"no {SESSION_COOKIE} cookie")
    return morsel.value


class TokenVerifier:
    """Checks an ID token: RS256 by a key of the pool, issued by the pool, for our client, an ID token,
    within its lifetime."""

    def __init__(self, keys: KeySource, *, region: str, user_pool_id: str, client_id: str,
                 now: Callable[[], float] = time.time) -> None:
        self._keys, self._issuer, self._client_id, self._now = keys, issuer(region, user_pool_id), client_id, now

    @property
    def client_id(self) -> str:
        return self._client_id

    def verify(self, token: str) -> Identity:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise Refused(f"not a JWT: {error}") from None
        key = self._key(kid)
        try:
            # PyJWT checks exp/nbf/iat against the wall clock; ours is injected, so they are checked below.
            claims = jwt.decode(token, key=key, algorithms=["RS256"], audience=self._client_id, issuer=self._issuer,
                                options={"require": ["exp", "iss", "aud", "sub", "token_use"],
                                         "verify_exp": False, "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWTError as error:
            raise Refused(f"token refused: {error}") from None
        self._check_times(claims)
        if claims.get("token_use") != "id":
            raise Refused(f"token_use is {claims.get('token_use')!r}, not 'id'")
        email = str(claims.get("email") or "")
        principal = email or str(claims.get("cognito:username") or "")
        if not principal:
            raise Refused("the token names no user (no email, no cognito:username)")
        return Identity(principal=principal, sub=str(claims["sub"]), email=email)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._now()
        try:
            exp, nbf = float(claims["exp"]), float(claims.get("nbf", claims.get("iat", 0)))
        except (TypeError, ValueError):
            raise Refused("exp, nbf or iat is not a number") from None
        if now > exp + LEEWAY_SECONDS:
            raise Refused("the token has expired")
        if now < nbf - LEEWAY_SECONDS:
            raise Refused("the token is not valid yet")

    def _key(self, kid: Any) -> Any:
        found = _find_key(self._keys.jwks(), kid)
        if found is None:  # the pool may have rotated its keys since the set was cached
            found = _find_key(self._keys.jwks(refresh=True), kid)
        if found is None:
            raise Refused(f"no key {kid!r} in the user pool's key set")
        try:
            return jwt.PyJWK(dict(found), algorithm="RS256").key
        except jwt.PyJWTError as error:
            raise Refused(f"key {kid!r} of the key set is unusable: {error}") from None


def _find_key(jwks: Mapping[str, Any], kid: Any) -> Mapping[str, Any] | None:
    return next((key for key in jwks.get("keys", []) if isinstance(key, Mapping) and key.get("kid") == kid), None)


# Each method by name: in IAM "*" matches "/" too, so ".../*/console/*" would also match a JSON route
# whose path merely holds a "console" segment (POST /runs/console/cancel).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def console_policy(method_arn: str, identity: Identity) -> dict[str, Any]:
    """Allow the console's routes of this API stage, every method, and nothing else (not the JSON API).

    API Gateway caches the answer per Cookie header (ResultTtlInSeconds) for every route behind the
    authorizer, so it must cover them all, not just the one first asked for."""
    # arn:aws:execute-api:{region}:{account}:{api id}/{stage}/{method}/{path...}
    prefix, _, resource = method_arn.partition(":execute-api:")
    parts = resource.split("/")
    if not prefix.startswith("arn:") or len(parts) < 3:
        raise ValueError(f"not an execute-api method ARN: {method_arn!r}")
    base = f"{prefix}:execute-api:{parts[0]}/{parts[1]}"  # ...:{api id}/{stage}
    return {
        "principalId": identity.principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
                           "Resource": [f"{base}/{method}/console{tail}" for method in _METHODS
                                        for tail in ("", "/*")]}],
        },
        "context": {"sub": identity.sub, "email": identity.email},
    }


def decide(event: Mapping[str, Any], verifier: TokenVerifier) -> dict[str, Any]:
    """The authorizer's answer to a REQUEST event: the console policy, or ``Refused``."""
    headers = event.get("headers") or {}
    cookie = next((value for name, value in headers.items() if name.lower() == "cookie"), None)
    identity = verifier.verify(session_token(cookie))
    return console_policy(str(event.get("methodArn", "")), identity)
