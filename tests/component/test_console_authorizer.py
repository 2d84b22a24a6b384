"""The console's authorizer (functions/console_auth) against real Cognito ID tokens: moto's user pools
issue RS256 tokens signed with the key whose public half moto ships, which reaches the verifier
through its KeySource port, as the pool's JWKS document does on AWS."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from moto import mock_aws
from moto.utilities.utils import load_resource

from functions.console_auth.jwks import HttpKeySource, KeysUnavailable
from functions.console_auth.settings import ConsoleAuthConfigError, ConsoleAuthSettings, find_client_id
from functions.console_auth.verify import Refused, TokenVerifier, decide
from loopline.embedded.runtime import LambdaContext
from tests.component.cognito_standin import CognitoStandIn

REGION = "us-east-1"
PASSWORD = "Correct-Horse-Battery-9"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123defg/Prod/GET/console/runs"
MOTO_JWKS = load_resource("cognitoidp/resources/jwks-public.json")


class MotoKeys:
    """The pool's key set as moto signs with it (on AWS: the pool's .well-known/jwks.json)."""

    def __init__(self, jwks: Mapping[str, Any] = MOTO_JWKS) -> None:
        self.document, self.refreshes = jwks, 0

    def jwks(self, *, refresh: bool = False) -> Mapping[str, Any]:
        self.refreshes += refresh
        return self.document


@dataclass
class Pool:
    idp: Any
    pool_id: str
    client_id: str

    def tokens(self, client_id: str | None = None, user: str = "ada@example.com") -> dict[str, str]:
        result = self.idp.admin_initiate_auth(
            UserPoolId=self.pool_id, ClientId=client_id or self.client_id, AuthFlow="ADMIN_NO_SRP_AUTH",
            AuthParameters={"USERNAME": user, "PASSWORD": PASSWORD})
        return result["AuthenticationResult"]

    def client(self, name: str) -> str:
        return self.idp.create_user_pool_client(UserPoolId=self.pool_id, ClientName=name,
                                                ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])["UserPoolClient"]["ClientId"]

    def verifier(self, client_id: str | None = None, **kwargs: Any) -> TokenVerifier:
        return TokenVerifier(kwargs.pop("keys", MotoKeys()), region=REGION, user_pool_id=self.pool_id,
                             client_id=client_id or self.client_id, **kwargs)


def _pool(idp: Any, name: str) -> Pool:
    pool_id = idp.create_user_pool(PoolName=name, UsernameAttributes=["email"],
                                   AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})["UserPool"]["Id"]
    pool = Pool(idp, pool_id, "")
    pool.client_id = pool.client("loopline-console")
    idp.admin_create_user(UserPoolId=pool_id, Username="ada@example.com", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "ada@example.com"}])
    idp.admin_set_user_password(UserPoolId=pool_id, Username="ada@example.com", Password=PASSWORD, Permanent=True)
    return pool


@pytest.fixture
def idp() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cognito-idp", region_name=REGION)


@pytest.fixture
def pool(idp: Any) -> Pool:
    return _pool(idp, "console")


def _event(cookie: str | None, method_arn: str = METHOD_ARN) -> dict[str, Any]:
    headers = {"Host": "abc123defg.execute-api.us-east-1.amazonaws.com"}
    if cookie is not None:
        headers["cookie"] = cookie  # API Gateway keeps the browser's case; the authorizer must not care
    return {"type": "REQUEST", "methodArn": method_arn, "headers": headers}


def _allowed(policy: dict[str, Any], arn: str) -> bool:
    """IAM's reading of the policy's resources ('*' matches any run of characters, '/' included)."""
    [statement] = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    return any(fnmatchcase(arn, pattern) for pattern in statement["Resource"])


# ------------------------------------------------------------------ allowed
def test_a_pool_id_token_in_the_session_cookie_is_allowed_as_its_user(pool: Pool) -> None:
    token = pool.tokens()["IdToken"]
    policy = decide(_event(f"theme=dark; loopline_session={token}; other=1"), pool.verifier())
    assert policy["principalId"] == "ada@example.com"
    assert policy["context"]["email"] == "ada@example.com"
    assert policy["context"]["sub"] == jwt.decode(token, options={"verify_signature": False})["sub"]


def test_the_policy_covers_every_console_route_of_the_stage_and_nothing_else(pool: Pool) -> None:
    policy = decide(_event(f"loopline_session={pool.tokens()['IdToken']}"), pool.verifier())
    base = "arn:aws:execute-api:us-east-1:123456789012:abc123defg"
    # The answer is cached per cookie for every route behind the authorizer: all of the console's.
    for allowed in ("/Prod/GET/console", "/Prod/GET/console/runs", "/Prod/POST/console/runs/r1/cancel",
                    "/Prod/GET/console/runs/r1/tasks/t1"):
        assert _allowed(policy, base + allowed), allowed
    # Not the JSON API (IAM's), not another stage, not another API.
    for refused in ("/Prod/POST/runs", "/Prod/GET/runs/r1", "/Prod/GET/consolex", "/Prod/GET/audit",
                    "/Dev/GET/console/runs", "/Prod/POST/approvals/t/console/x", "/Prod/POST/runs/console/cancel"):
        assert not _allowed(policy, base + refused), refused
    assert not _allowed(policy, "arn:aws:execute-api:us-east-1:123456789012:otherapi99/Prod/GET/console/runs")


# ------------------------------------------------------------------ refused
def test_an_expired_token_is_refused(pool: Pool) -> None:
    token = pool.tokens()["IdToken"]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    decide(_event(f"loopline_session={token}"), pool.verifier(now=lambda: exp + 29))  # within the leeway
    with pytest.raises(Refused, match="expired"):
        decide(_event(f"loopline_session={token}"), pool.verifier(now=lambda: exp + 31))


def test_a_token_not_yet_valid_is_refused(pool: Pool) -> None:
    token = pool.tokens()["IdToken"]
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    with pytest.raises(Refused, match="not valid yet"):
        decide(_event(f"loopline_session={token}"), pool.verifier(now=lambda: iat - 120))


def test_a_token_for_another_app_client_is_refused(pool: Pool) -> None:
    other = pool.client("someone-elses-app")
    token = pool.tokens(client_id=other)["IdToken"]
    decide(_event(f"loopline_session={token}"), pool.verifier(client_id=other))  # valid for its own client
    with pytest.raises(Refused, match="[Aa]udience"):
        decide(_event(f"loopline_session={token}"), pool.verifier())


def test_a_token_of_another_user_pool_is_refused(idp: Any, pool: Pool) -> None:
    # moto signs every pool's tokens with one key: only the issuer tells them apart, as it must.
    stranger = _pool(idp, "elsewhere")
    token = stranger.tokens()["IdToken"]
    with pytest.raises(Refused, match="[Ii]ssuer"):
        decide(_event(f"loopline_session={token}"), pool.verifier(client_id=stranger.client_id))


def test_an_access_token_is_not_an_id_token(pool: Pool) -> None:
    access = pool.tokens()["AccessToken"]
    with pytest.raises(Refused):
        decide(_event(f"loopline_session={access}"), pool.verifier())
    # Even one carrying our client as its audience: token_use decides.
    claims = jwt.decode(pool.tokens()["IdToken"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "token_use": "access"}, _moto_private_key(), algorithm="RS256",
                        headers={"kid": "dummy"})
    with pytest.raises(Refused, match="token_use"):
        decide(_event(f"loopline_session={forged}"), pool.verifier())


def test_a_tampered_token_is_refused(pool: Pool) -> None:
    header, payload, signature = pool.tokens()["IdToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email"] = "mallory@example.com"
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Refused, match="[Ss]ignature"):
        decide(_event(f"loopline_session={header}.{changed}.{signature}"), pool.verifier())


def test_unsigned_and_hmac_tokens_are_refused(pool: Pool) -> None:
    claims = jwt.decode(pool.tokens()["IdToken"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "dummy"})
    # The public key used as an HMAC secret: the classic confusion, refused since only RS256 is allowed.
    public_pem = jwt.PyJWK(MOTO_JWKS["keys"][0]).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    hmac_signed = _hs256(claims, public_pem)
    for token in (unsigned, hmac_signed):
        with pytest.raises(Refused):
            decide(_event(f"loopline_session={token}"), pool.verifier())


def test_a_token_signed_by_a_key_the_pool_does_not_have_is_refused_after_one_refresh(pool: Pool) -> None:
    keys = MotoKeys({"keys": [{**MOTO_JWKS["keys"][0], "kid": "rotated-away"}]})
    with pytest.raises(Refused, match="no key 'dummy'"):
        decide(_event(f"loopline_session={pool.tokens()['IdToken']}"), pool.verifier(keys=keys))
    assert keys.refreshes == 1


@pytest.mark.parametrize("cookie", [None, "", "theme=dark", "loopline_session=", "loopline_session=garbage",
                                    "loopline_session=a.b.c", 'loopline_session="unterminated',
                                    "loopline_session=" + "A" * 5000])
def test_a_missing_or_garbage_cookie_is_refused(pool: Pool, cookie: str | None) -> None:
    with pytest.raises(Refused):
        decide(_event(cookie), pool.verifier())


# ------------------------------------------------------------ the adapters
def test_the_app_client_is_found_by_name_and_exactly_one(idp: Any, pool: Pool) -> None:
    assert find_client_id(idp, pool.pool_id, "loopline-console") == pool.client_id
    with pytest.raises(ConsoleAuthConfigError, match="0 app clients"):
        find_client_id(idp, pool.pool_id, "no-such-client")
    pool.client("loopline-console")
    with pytest.raises(ConsoleAuthConfigError, match="2 app clients"):
        find_client_id(idp, pool.pool_id, "loopline-console")
    with pytest.raises(ConsoleAuthConfigError, match="cannot list"):
        find_client_id(idp, f"{REGION}_nosuchpool", "loopline-console")


def test_settings_say_what_is_missing() -> None:
    with pytest.raises(ConsoleAuthConfigError, match="LOOPLINE_CONSOLE_USER_POOL_ID"):
        ConsoleAuthSettings.from_environment({"AWS_REGION": REGION, "LOOPLINE_CONSOLE_CLIENT_NAME": "c"})
    local = ConsoleAuthSettings.from_environment({"LOOPLINE_CONSOLE_SIGN_IN": "none"})
    assert local.sign_in is False


def test_the_key_set_is_fetched_once_and_refetched_at_most_once_a_minute(pool: Pool) -> None:
    server = CognitoStandIn(reply=json.dumps(MOTO_JWKS).encode())
    clock = [1000.0]
    try:
        keys = HttpKeySource(REGION, pool.pool_id, url=server.url + "/pool/.well-known/jwks.json", now=lambda: clock[0])
        verifier = pool.verifier(keys=keys)
        for _ in range(3):
            assert decide(_event(f"loopline_session={pool.tokens()['IdToken']}"), verifier)["principalId"]
        assert len(server.requests) == 1
        keys.jwks(refresh=True)
        assert len(server.requests) == 1  # fetched less than a minute ago
        clock[0] += 61
        keys.jwks(refresh=True)
        assert len(server.requests) == 2
    finally:
        server.close()


def test_an_unreadable_key_set_is_an_error_not_a_sign_out(pool: Pool) -> None:
    server = CognitoStandIn(reply=b"<html>maintenance</html>")
    try:
        with pytest.raises(KeysUnavailable, match="cannot read"):
            HttpKeySource(REGION, pool.pool_id, url=server.url).jwks()
    finally:
        server.close()
    with pytest.raises(KeysUnavailable, match="cannot read"):  # nobody listens any more
        HttpKeySource(REGION, pool.pool_id, url=server.url + "/pool/.well-known/jwks.json", timeout=2).jwks()
    assert HttpKeySource(REGION, "us-east-1_abc")._url == (
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/jwks.json")


# ------------------------------------------------------------------ helpers
def _moto_private_key() -> Any:
    return jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "dummy"}).encode()) + "." + b64(
        json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def test_time_is_real_by_default(pool: Pool) -> None:
    """Without an injected clock the verifier reads the wall clock (a fresh token passes)."""
    assert TokenVerifier(MotoKeys(), region=REGION, user_pool_id=pool.pool_id, client_id=pool.client_id).verify(
        pool.tokens()["IdToken"]).principal == "ada@example.com"


# ------------------------------------------------------------- the handler
CONTEXT = LambdaContext(function_name="ConsoleAuthorizerFunction")


def test_the_handler_finds_its_client_and_answers_unauthorized_or_the_policy(
        pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.console_auth import app

    for name, value in {"AWS_REGION": REGION, "LOOPLINE_CONSOLE_USER_POOL_ID": pool.pool_id,
                        "LOOPLINE_CONSOLE_CLIENT_NAME": "loopline-console"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app, "_verifier", None)  # a cold start
    # API Gateway answers 401 only for an authorizer error whose message is exactly "Unauthorized".
    with pytest.raises(app.Unauthorized) as refused:
        app.lambda_handler(_event("theme=dark"), CONTEXT)
    assert str(refused.value) == "Unauthorized"
    built = app._verifier
    assert built is not None and built.client_id == pool.client_id  # looked up by name in the pool
    # The pool's keys come from Cognito's URL on AWS; here, moto's through the same port.
    monkeypatch.setattr(app, "_verifier", pool.verifier())
    policy = app.lambda_handler(_event(f"loopline_session={pool.tokens()['IdToken']}"), CONTEXT)
    assert policy["principalId"] == "ada@example.com"


def test_the_handler_fails_loudly_when_its_client_is_missing(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.console_auth import app

    for name, value in {"AWS_REGION": REGION, "LOOPLINE_CONSOLE_USER_POOL_ID": pool.pool_id,
                        "LOOPLINE_CONSOLE_CLIENT_NAME": "deleted-client"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app, "_verifier", None)
    with pytest.raises(ConsoleAuthConfigError, match="0 app clients named 'deleted-client'"):
        app.lambda_handler(_event(f"loopline_session={pool.tokens()['IdToken']}"), CONTEXT)
