"""Where the console's sign-in lives: the user pool, its app client, the hosted UI.

The app client's id cannot reach the functions through their environment: the client's callback
URL names the API (its id), the API's definition names these functions, so a reference from a
function to the client would close a cycle CloudFormation refuses. The functions get the pool's id
and the client's name (both known without the API) and look the client's id up once per container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class ConsoleAuthConfigError(Exception):
    """The deployment's sign-in settings are missing or name nothing: an operator's problem, said plainly."""


@dataclass(frozen=True)
class ConsoleAuthSettings:
    region: str
    user_pool_id: str
    client_name: str
    auth_domain: str  # https://{prefix}.auth.{region}.amazoncognito.com (the hosted UI); "" for the authorizer
    public_url: str  # the API's base URL when it is not the execute-api one ("" derives it from the request)
    sign_in: bool  # False in `loopline dev`: no Cognito there, everyone is the local user

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ConsoleAuthSettings:
        env = os.environ if environ is None else environ
        sign_in = signs_in(env)
        settings = cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
            user_pool_id=env.get("LOOPLINE_CONSOLE_USER_POOL_ID", ""),
            client_name=env.get("LOOPLINE_CONSOLE_CLIENT_NAME", ""),
            auth_domain=env.get("LOOPLINE_CONSOLE_AUTH_DOMAIN", "").rstrip("/"),
            public_url=env.get("LOOPLINE_PUBLIC_URL", "").rstrip("/"),
            sign_in=sign_in,
        )
        if sign_in:
            missing = [name for name, value in (("AWS_REGION", settings.region),
                                                ("LOOPLINE_CONSOLE_USER_POOL_ID", settings.user_pool_id),
                                                ("LOOPLINE_CONSOLE_CLIENT_NAME", settings.client_name)) if not value]
            if missing:
                raise ConsoleAuthConfigError(f"console sign-in is not configured: {', '.join(missing)} unset")
        return settings


def signs_in(environ: Mapping[str, str] | None = None) -> bool:
    """Whether people sign in to the console (Cognito, on AWS); `loopline dev` sets it to "none"."""
    env = os.environ if environ is None else environ
    return env.get("LOOPLINE_CONSOLE_SIGN_IN", "cognito").strip().lower() != "none"


def find_client_id(cognito: Any, user_pool_id: str, client_name: str) -> str:
    """The id of the pool's one app client named ``client_name`` (cognito-idp:ListUserPoolClients)."""
    found: list[str] = []
    kwargs: dict[str, Any] = {"UserPoolId": user_pool_id, "MaxResults": 60}
    try:
        while True:
            page = cognito.list_user_pool_clients(**kwargs)
            found += [c["ClientId"] for c in page.get("UserPoolClients", []) if c.get("ClientName") == client_name]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except (BotoCoreError, ClientError) as error:
        raise ConsoleAuthConfigError(f"cannot list the app clients of user pool {user_pool_id}: {error}") from error
    if len(found) != 1:
        raise ConsoleAuthConfigError(
            f"user pool {user_pool_id} has {len(found)} app clients named {client_name!r}, not exactly one")
    return found[0]
