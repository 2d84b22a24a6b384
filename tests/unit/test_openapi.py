"""GET /openapi.json (issue #11 item 6): the API described from its route definitions, and held to
template.yaml, which is what API Gateway (and the dev server's gateway) actually routes."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

from loopline.embedded.provision import DEFAULT_TEMPLATE, routes_from_template
from loopline.embedded.runtime import LambdaContext
from loopline.memory.local_mode import LocalMode
from tests.conftest import api_event

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict:
    for name, value in {"POWERTOOLS_METRICS_NAMESPACE": "Loopline", "POWERTOOLS_SERVICE_NAME": "loopline",
                        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(name, value)
    from functions.api.app import lambda_handler

    LocalMode()  # the handler drives an in-memory engine
    event = api_event("api_get_run.json", path_params={})
    event.update(resource="/openapi.json", path="/openapi.json", pathParameters=None)
    reply = lambda_handler(event, LambdaContext(function_name="ApiFunction"))
    assert reply["statusCode"] == 200, reply
    assert reply["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return json.loads(reply["body"])


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_every_routed_path_is_documented_and_every_documented_path_is_routed(document):
    # ApiFunction's routes only: the console's (ConsoleSignInFunction's /console/login, /console/auth,
    # /console/logout, and the console's pages) are HTML for a browser behind their own authorizer,
    # not part of the JSON API this document describes.
    routed = {(route.method, route.path) for route in routes_from_template() if route.function == "ApiFunction"}
    assert _operations(document) == routed
    console = {(r.method, r.path) for r in routes_from_template() if r.path.startswith("/console")}
    assert {("GET", "/console/login"), ("GET", "/console/auth"), ("GET", "/console/logout")} <= console
    assert not console & _operations(document)


def test_the_consoles_pages_are_not_in_the_document(document):
    """ConsoleFunction's routes (GET /, /console/...) are HTML pages and their form posts for a person in a
    browser, not the JSON API a client is generated from: they are left out on purpose (docs/console.md)."""
    console = {(route.method, route.path) for route in routes_from_template() if route.function == "ConsoleFunction"}
    assert ("GET", "/console") in console and ("GET", "/") in console
    assert not console & _operations(document)


def _events() -> dict[tuple[str, str], dict]:
    template = yaml_parse(Path(DEFAULT_TEMPLATE).read_text())
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    return {(e["Properties"]["Method"].upper(), e["Properties"]["Path"]): e["Properties"] for e in events.values()}


def test_a_route_is_marked_signed_exactly_when_template_yaml_puts_it_behind_iam(document):
    for (method, path), props in _events().items():
        operation = document["paths"][path][method.lower()]
        open_route = (props.get("Auth") or {}).get("Authorizer") == "NONE"
        assert (operation.get("security") is None) is open_route, (method, path)
        if not open_route:
            assert operation["security"] == [{"sigv4": []}]
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_every_operation_documents_its_answers_and_the_error_shape(document):
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert "HTTPValidationError" not in schemas  # Powertools' validation is not used: no 422 is answered
    for path, item in document["paths"].items():
        for method, operation in item.items():
            successes = [code for code in operation["responses"] if code.startswith("2")]
            # One success, but for a registration (201 new, 200 the same content again) and a migration (202
            # queued, 200 a dry run): one shape each.
            assert len(successes) == 1 or (method, path, sorted(successes)) in (
                ("post", "/workflows", ["200", "201"]), ("post", "/runs/{run_id}/migrate", ["200", "202"]),
                ("post", "/workflows/{workflow_id}/versions/{version}/migrate", ["200", "202"])), (method, path)
            refs = {operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                    for code in successes}
            assert len(refs) == 1 and all(refs), (method, path)
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody", (method, path, code)
            if method == "post" and "requestBody" in operation:
                assert {"415", "413"} <= set(operation["responses"]), (method, path)


def test_request_bodies_are_described_for_every_post_that_reads_one(document):
    paths = document["paths"]
    start = paths["/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert start["required"] == ["workflow"] and "input" in start["properties"]
    decide = paths["/approvals/{token}"]["post"]["requestBody"]["content"]
    assert decide["application/json"]["schema"]["properties"]["decision"]["enum"] == ["APPROVED", "REJECTED"]
    assert "csrf" in decide["application/x-www-form-urlencoded"]["schema"]["required"]
    assert paths["/callbacks/{token}"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {}
    for path in ("/workflows", "/runs/{run_id}/approvals/{task_id}"):
        assert paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"]


def test_the_document_names_the_server_and_this_release(document):
    assert document["openapi"].startswith("3.1")
    assert document["servers"][0]["url"].startswith(("http://", "https://"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert document["info"]["version"] == project["version"]


def test_query_parameters_are_documented_beside_a_paths_own(document):
    """Powertools writes a path's own parameters over a route's; openapi.py adds the query's to them."""
    diff = document["paths"]["/workflows/{workflow_id}/diff"]["get"]
    assert [(p["name"], p["in"]) for p in diff["parameters"]] == [("workflow_id", "path"), ("from", "query"),
                                                                  ("to", "query")]
    runs = document["paths"]["/runs"]["get"]
    assert "status" in [p["name"] for p in runs["parameters"]]
    assert all(not key.startswith("x-loopline") for item in document["paths"].values() for op in item.values()
               for key in op)


def test_a_path_parameter_never_takes_a_literal_sibling_routes_segment(document):
    # Found by tests/e2e/test_openapi_fuzz.py: GET /runs/counts is its own route, so a request for a "run" named
    # "counts" is answered by it (no run is: ids are generated, infra/engine/run_start.py and children.py).
    (run_id,) = [p for p in document["paths"]["/runs/{run_id}"]["get"]["parameters"] if p["in"] == "path"]
    assert run_id["schema"]["not"] == {"enum": ["counts"]}
    links = document["paths"]["/runs/{run_id}/links"]["get"]["parameters"]
    assert all("not" not in p["schema"] for p in links)  # no literal sibling there
