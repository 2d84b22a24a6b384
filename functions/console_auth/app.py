"""ConsoleAuthorizerFunction: API Gateway's Lambda REQUEST authorizer for the console's routes.

It reads the ``loopline_session`` cookie (a Cognito ID token) and answers a policy allowing the
console's routes with the user as principalId (the console reads ``requestContext.authorizer.
principalId``), or "Unauthorized", which API Gateway answers 401 (the stage's gateway response turns
that into a redirect to /console/login). The checks are in functions/console_auth/verify.py.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger

from functions.console_auth.jwks import HttpKeySource
from functions.console_auth.settings import ConsoleAuthSettings, find_client_id
from functions.console_auth.verify import Refused, TokenVerifier, decide

logger = Logger()
_verifier: TokenVerifier | None = None


class Unauthorized(Exception):
    """API Gateway answers 401 when an authorizer fails with exactly this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def _get_verifier() -> TokenVerifier:
    """Built once per container: the client id looked up, the key set fetched on first use and kept."""
    global _verifier
    if _verifier is None:
        settings = ConsoleAuthSettings.from_environment()
        client_id = find_client_id(boto3.client("cognito-idp", region_name=settings.region),
                                   settings.user_pool_id, settings.client_name)
        _verifier = TokenVerifier(HttpKeySource(settings.region, settings.user_pool_id), region=settings.region,
                                  user_pool_id=settings.user_pool_id, client_id=client_id)
    return _verifier


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A configuration or key-fetch failure is raised as it is: API Gateway answers 500 and the log has
    # the reason, instead of sending a signed-in user to sign in again.
    verifier = _get_verifier()
    try:
        return decide(event, verifier)
    except Refused as why:
        logger.info("console request refused", extra={"reason": str(why)})
        raise Unauthorized() from None
