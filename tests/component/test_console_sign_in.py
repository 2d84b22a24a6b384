"""The console's sign-in routes (functions/console/auth_routes.py) through ConsoleSignInFunction's
handler, configured from its environment as on AWS: the app client found in a (moto) user pool, and
Cognito's token endpoint played by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from functions.console_auth import sign_in
from functions.console_auth.verify import TokenVerifier, decide
from loopline.embedded.runtime import LambdaContext
from tests.component.cognito_standin import CognitoStandIn
from tests.component.test_console_authorizer import PASSWORD, MotoKeys

REGION = "us-east-1"
DOMAIN = "abc123defg.execute-api.us-east-1.amazonaws.com"
BASE = f"https://{DOMAIN}/Prod"


@dataclass
class Setup:
    idp: Any
    pool_id: str
    client_id: str
    cognito: CognitoStandIn

    def id_token(self) -> str:
        return self.idp.admin_initiate_auth(
            UserPoolId=self.pool_id, ClientId=self.client_id, AuthFlow="ADMIN_NO_SRP_AUTH",
            AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": PASSWORD})["AuthenticationResult"]["IdToken"]


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    cognito = CognitoStandIn()
    with mock_aws():
        idp = boto3.client("cognito-idp", region_name=REGION)
        pool_id = idp.create_user_pool(PoolName="console", UsernameAttributes=["email"])["UserPool"]["Id"]
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="someone-elses-app")
        client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="loopline-console",
                                                ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])["UserPoolClient"]["ClientId"]
        idp.admin_create_user(UserPoolId=pool_id, Username="ada@example.com", MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username="ada@example.com", Password=PASSWORD,
                                    Permanent=True)
        for name, value in {"AWS_REGION": REGION, "LOOPLINE_CONSOLE_USER_POOL_ID": pool_id,
                            "LOOPLINE_CONSOLE_CLIENT_NAME": "loopline-console",
                            "LOOPLINE_CONSOLE_AUTH_DOMAIN": cognito.url, "LOOPLINE_PUBLIC_URL": ""}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("LOOPLINE_CONSOLE_SIGN_IN", raising=False)
        monkeypatch.setattr(sign_in, "_configured", False)  # a cold start
        yield Setup(idp, pool_id, client_id, cognito)
    cognito.close()


def _get(path: str, query: dict[str, str] | None = None, cookie: str | None = None) -> dict[str, Any]:
    headers = {"Host": DOMAIN, "Accept": "text/html"}
    if cookie is not None:
        headers["Cookie"] = cookie
    event = {
        "resource": path, "path": path, "httpMethod": "GET", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"domainName": DOMAIN, "stage": "Prod", "path": f"/Prod{path}", "httpMethod": "GET",
                           "resourcePath": path, "requestId": "r1", "identity": {"sourceIp": "198.51.100.7"}},
    }
    return sign_in.lambda_handler(event, LambdaContext(function_name="ConsoleSignInFunction"))


def _cookies(reply: dict[str, Any]) -> dict[str, list[str]]:
    """Set-Cookie headers by cookie name: [value, attribute, ...]."""
    found = {}
    for header in reply["multiValueHeaders"].get("Set-Cookie", []):
        first, *attributes = header.split("; ")
        name, _, value = first.partition("=")
        found[name] = [value, *attributes]
    return found


def _location(reply: dict[str, Any]) -> str:
    assert reply["statusCode"] == 302, reply
    [location] = reply["multiValueHeaders"]["Location"]
    return str(location)


def _login(setup: Setup) -> tuple[dict[str, list[str]], str, str]:
    reply = _get("/console/login")
    location = urlsplit(_location(reply))
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    state, _, verifier = _cookies(reply)["loopline_signin"][0].partition(".")
    return query, state, verifier


# ------------------------------------------------------------------- login
def test_login_sends_the_browser_to_the_hosted_ui_with_a_pkce_challenge_of_its_verifier_cookie(setup: Setup) -> None:
    reply = _get("/console/login")
    location = urlsplit(_location(reply))
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{setup.cognito.url}/oauth2/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == setup.client_id
    assert query["redirect_uri"] == f"{BASE}/console/auth" and query["scope"] == "openid email"
    value, *attributes = _cookies(reply)["loopline_signin"]
    state, _, verifier = value.partition(".")
    assert query["state"] == state and query["code_challenge_method"] == "S256"
    # RFC 7636: the challenge is base64url(sha256(verifier)), computed here independently.
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert 43 <= len(verifier) <= 128 and len(state) >= 32
    assert set(attributes) == {"Path=/Prod/console/auth", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"}
    assert reply["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    # Every sign-in starts afresh.
    again = _cookies(_get("/console/login"))["loopline_signin"][0]
    assert again.partition(".")[0] != state and again.partition(".")[2] != verifier


# -------------------------------------------------------------------- auth
def test_auth_exchanges_the_code_with_the_verifier_and_sets_the_session_cookie(setup: Setup) -> None:
    query, state, verifier = _login(setup)
    id_token = setup.id_token()
    setup.cognito.reply = json.dumps({"id_token": id_token, "access_token": "a", "refresh_token": "r",
                                      "expires_in": 3600, "token_type": "Bearer"}).encode()
    reply = _get("/console/auth", {"code": "the-code", "state": query["state"]},
                 cookie=f"loopline_signin={state}.{verifier}")
    assert _location(reply) == f"{BASE}/console"
    [request] = setup.cognito.requests
    assert request["path"] == "/oauth2/token"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request["headers"]  # a public client: no secret anywhere
    assert request["form"] == {"grant_type": "authorization_code", "client_id": setup.client_id, "code": "the-code",
                               "redirect_uri": f"{BASE}/console/auth", "code_verifier": verifier}
    cookies = _cookies(reply)
    value, *attributes = cookies["loopline_session"]
    assert value == id_token
    assert set(attributes) == {"Path=/Prod/console", "Max-Age=3600", "HttpOnly", "Secure", "SameSite=Lax"}
    assert cookies["loopline_signin"][0] == "" and "Max-Age=0" in cookies["loopline_signin"]
    # The cookie it set is what the console's authorizer allows.
    verifier_of_tokens = TokenVerifier(MotoKeys(), region=REGION, user_pool_id=setup.pool_id,
                                       client_id=setup.client_id)
    policy = decide({"methodArn": "arn:aws:execute-api:us-east-1:1:abc123defg/Prod/GET/console",
                     "headers": {"Cookie": f"loopline_session={value}"}}, verifier_of_tokens)
    assert policy["principalId"] == "ada@example.com"


@pytest.mark.parametrize("case", ["wrong state", "no cookie", "no code", "cookie without verifier", "cancelled"])
def test_auth_refuses_a_sign_in_this_browser_did_not_start(setup: Setup, case: str) -> None:
    query, state, verifier = _login(setup)
    params, cookie = {"code": "c", "state": query["state"]}, f"loopline_signin={state}.{verifier}"
    if case == "wrong state":
        params["state"] = state[:-1] + ("A" if state[-1] != "A" else "B")
    elif case == "no cookie":
        cookie = "theme=dark"
    elif case == "no code":
        del params["code"]
    elif case == "cookie without verifier":
        cookie = f"loopline_signin={state}"
    else:
        params = {"error": "access_denied", "error_description": "the user said no", "state": state}
    reply = _get("/console/auth", params, cookie=cookie)
    assert reply["statusCode"] == 400, reply
    assert reply["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert "/Prod/console/login" in reply["body"]
    assert "Set-Cookie" not in reply["multiValueHeaders"]
    assert setup.cognito.requests == []  # the code was never spent


@pytest.mark.parametrize(("status", "reply", "answered"), [
    (400, b'{"error": "invalid_grant"}', 400),  # used or expired code: start again
    (500, b'{"error": "server_error"}', 502),
    (200, b"<html>not json</html>", 502),
    (200, b'{"access_token": "a", "expires_in": 3600}', 502),  # no ID token
    (200, b'["a list"]', 502),
])
def test_a_failed_token_exchange_is_a_page_and_no_cookie(setup: Setup, status: int, reply: bytes,
                                                          answered: int) -> None:
    query, state, verifier = _login(setup)
    setup.cognito.status, setup.cognito.reply = status, reply
    page = _get("/console/auth", {"code": "c", "state": query["state"]}, cookie=f"loopline_signin={state}.{verifier}")
    assert page["statusCode"] == answered, page
    assert "Set-Cookie" not in page["multiValueHeaders"]
    assert "Sign-in failed" in page["body"]


def test_a_token_endpoint_nobody_answers_is_a_502(setup: Setup) -> None:
    query, state, verifier = _login(setup)
    setup.cognito.close()
    page = _get("/console/auth", {"code": "c", "state": query["state"]}, cookie=f"loopline_signin={state}.{verifier}")
    assert page["statusCode"] == 502 and "did not answer" in page["body"]


# ------------------------------------------------------------------ logout
def test_logout_clears_the_session_and_ends_the_hosted_ui_session(setup: Setup) -> None:
    reply = _get("/console/logout", cookie="loopline_session=x")
    location = urlsplit(_location(reply))
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{setup.cognito.url}/logout"
    assert parse_qs(location.query) == {"client_id": [setup.client_id], "logout_uri": [f"{BASE}/console"]}
    value, *attributes = _cookies(reply)["loopline_session"]
    assert value == "" and "Max-Age=0" in attributes and "Path=/Prod/console" in attributes


# ------------------------------------------------------- elsewhere than AWS
def test_a_public_url_is_where_cognito_sends_the_browser_back(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_PUBLIC_URL", "https://ops.example.com/loopline/")
    query, _, _ = _login(setup)
    assert query["redirect_uri"] == "https://ops.example.com/loopline/console/auth"
    assert "Path=/loopline/console/auth" in _cookies(_get("/console/login"))["loopline_signin"]


def test_without_cognito_the_routes_lead_to_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """`loopline dev`: no user pool, everyone is the local user; nothing is asked of AWS."""
    monkeypatch.setenv("LOOPLINE_CONSOLE_SIGN_IN", "none")
    monkeypatch.setenv("LOOPLINE_PUBLIC_URL", "http://127.0.0.1:8080")
    monkeypatch.delenv("LOOPLINE_CONSOLE_USER_POOL_ID", raising=False)
    monkeypatch.setattr(sign_in, "_configured", False)
    for path in ("/console/login", "/console/auth"):
        reply = _get(path)
        assert _location(reply) == "/console" and "Set-Cookie" not in reply["multiValueHeaders"], path
    assert _location(_get("/console/logout")) == "/console"


def test_an_unconfigured_deployment_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.console_auth.settings import ConsoleAuthConfigError

    monkeypatch.delenv("LOOPLINE_CONSOLE_SIGN_IN", raising=False)
    monkeypatch.delenv("LOOPLINE_CONSOLE_USER_POOL_ID", raising=False)
    monkeypatch.setattr(sign_in, "_configured", False)
    with pytest.raises(ConsoleAuthConfigError, match="LOOPLINE_CONSOLE_USER_POOL_ID"):
        _get("/console/login")

