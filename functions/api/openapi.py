"""GET /openapi.json: the API described from its route definitions (functions/api/app.py).

Powertools builds the paths, parameters and answers from each route's decorator (the shapes are
in functions/api/schemas.py); this adds what a route cannot say: the server to call, the release,
and how AWS authenticates the signed routes.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from functions.api.schemas import QUERY_KEY, SIGV4, error_response
from infra.json_http import STATE_CHANGING
from infra.version import VERSION

DESCRIPTION = (
    "Start, inspect and operate loopline runs; decide approvals and complete callbacks by their links. "
    "Every answer is JSON (an approval link also answers text/html to a browser); every error is "
    '`{"error": "..."}` with a 4xx status, possibly with more fields. State-changing requests must be '
    "`Content-Type: application/json` (415 otherwise), except the approval page's own form (and its "
    "confirmation form at /workflow/resume) and a POST /workflow/start/{name} or /graph/resume/{run_id} with no "
    "body at all. On AWS the "
    "routes marked with the sigv4 scheme need a SigV4-signed request (IAM); approval and callback links "
    "need none: the token in their path is their credential.")

# API Gateway's extension naming SigV4 signing; OpenAPI has no scheme of its own for it.
SECURITY_SCHEMES = {SIGV4: {"type": "apiKey", "name": "Authorization", "in": "header",
                            "description": "AWS Signature Version 4 (IAM), on AWS only",
                            "x-amazon-apigateway-authtype": "awsSigv4"}}


@lru_cache(maxsize=8)  # one per server URL: the routes do not change while the process lives
def document(app: APIGatewayRestResolver, server: str) -> str:
    from aws_lambda_powertools.event_handler.openapi.models import Server

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Pydantic v2 forces OpenAPI 3.1": asked for 3.1 anyway
        text = app.get_openapi_json_schema(title="loopline", version=VERSION, description=DESCRIPTION,
                                           openapi_version="3.1.0", servers=[Server(url=server)],
                                           security_schemes=SECURITY_SCHEMES)  # type: ignore[arg-type]
    schema = json.loads(text)
    # Powertools always adds the shapes of its own request validation, which this API does not use
    # (its errors are {"error": ...}): dropped, so a client is not told of a 422 it never gets.
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    # The front door answers every state-changing request whose body it will not read, before any
    # route runs: 415 unless JSON (functions/api/app.py's _json_only), 413 above the size limit.
    reserved = _reserved_segments(schema["paths"])
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            operation["parameters"] = operation.get("parameters", []) + operation.pop(QUERY_KEY, [])
            for parameter in operation["parameters"]:
                taken = reserved.get((path, method, parameter["name"])) if parameter.get("in") == "path" else None
                if taken:  # GET /runs/counts is its own route: no run is named "counts"
                    parameter["schema"] = {**parameter.get("schema", {}), "not": {"enum": sorted(taken)}}
            if not operation["parameters"]:
                del operation["parameters"]
            if method.upper() in STATE_CHANGING:
                for status in (413, 415):
                    operation["responses"].setdefault(str(status), error_response(status))
    return json.dumps(schema, separators=(",", ":"))


def _reserved_segments(paths: dict) -> dict[tuple[str, str, str], set[str]]:
    """(templated path, method, parameter) -> the values a literal route of the same method takes from it:
    a request for /runs/counts reaches GET /runs/counts, never GET /runs/{run_id} with a run named "counts"."""
    reserved: dict[tuple[str, str, str], set[str]] = {}
    for path, item in paths.items():
        segments = path.split("/")
        for other in paths:
            literal = other.split("/")
            if other == path or len(literal) != len(segments):
                continue
            params = [(s[1:-1], o) for s, o in zip(segments, literal) if s.startswith("{") and s.endswith("}")]
            fixed = all(s == o for s, o in zip(segments, literal) if not (s.startswith("{") and s.endswith("}")))
            if len(params) == 1 and fixed and not params[0][1].startswith("{"):
                for method in item.keys() & paths[other].keys():
                    reserved.setdefault((path, method, params[0][0]), set()).add(params[0][1])
    return reserved
