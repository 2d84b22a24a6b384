"""ConsoleSignInFunction: the console's three sign-in routes (functions/console/auth_routes.py).

They sit outside the console's authorizer (a browser without a session must reach them), so they
run in this small function of their own, whose role may only look up the app client's id.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from functions.console import auth_routes
from functions.console_auth.settings import ConsoleAuthSettings, find_client_id

logger = Logger()
app = APIGatewayRestResolver()
app.include_router(auth_routes.router)
_configured = False


def _configure() -> None:
    """Once per container: the settings from the environment, the client id from the user pool."""
    global _configured
    if _configured:
        return
    settings = ConsoleAuthSettings.from_environment()
    if not settings.sign_in:
        auth_routes.use(auth_routes.SignIn(enabled=False, public_url=settings.public_url))
    else:
        client_id = find_client_id(boto3.client("cognito-idp", region_name=settings.region),
                                   settings.user_pool_id, settings.client_name)
        auth_routes.use(auth_routes.SignIn(enabled=True, auth_domain=settings.auth_domain, client_id=client_id,
                                           public_url=settings.public_url))
    _configured = True


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _configure()
    return app.resolve(event, context)
