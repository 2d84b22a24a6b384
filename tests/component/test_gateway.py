"""loopline/embedded/gateway.py driven over real HTTP with urllib."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from loopline.embedded.gateway import LocalGateway
from loopline.embedded.provision import Route

ROUTES = [
    Route("POST", "/runs", "Api"),
    Route("GET", "/runs/{run_id}", "Api"),
    Route("GET", "/runs/latest", "Other"),
    Route("POST", "/boom", "Api"),
    Route("GET", "/bad-response", "Api"),
    Route("GET", "/binary", "Api"),
    Route("ANY", "/files/{proxy+}", "Files"),
]


def echo(function: str, event: dict[str, Any]) -> dict[str, Any]:
    """A stand-in Lambda handler: answers with what it was given."""
    if event["resource"] == "/boom":
        raise RuntimeError("secret detail from the handler")
    if event["resource"] == "/bad-response":
        return {"body": "no status code"}  # type: ignore[return-value]
    if event["resource"] == "/binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
                "body": base64.b64encode(b"\x89PNG\x00\xff").decode(), "isBase64Encoded": True}
    return {"statusCode": 201 if event["httpMethod"] == "POST" else 200,
            "headers": {"Content-Type": "application/json", "X-Function": function},
            "body": json.dumps(event)}


@pytest.fixture
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(ROUTES, echo, max_body=64 * 1024) as gw:
        yield gw


def call(gw: LocalGateway, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(gw.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_path_parameters_query_strings_and_headers(gateway: LocalGateway) -> None:
    status, headers, body = call(gateway, "GET", "/runs/r-123?verbose=1&tag=a&tag=b&empty=",
                                 headers={"X-Trace": "t1", "Accept": "text/html"})
    assert status == 200 and headers["X-Function"] == "Api"
    event = json.loads(body)
    assert event["resource"] == "/runs/{run_id}"
    assert event["path"] == "/runs/r-123"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"run_id": "r-123"}
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"verbose": ["1"], "tag": ["a", "b"], "empty": [""]}
    assert event["headers"]["X-Trace"] == "t1" and event["headers"]["Accept"] == "text/html"
    assert event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["stageVariables"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/runs/{run_id}" and context["httpMethod"] == "GET"
    assert context["stage"] == "Prod" and context["path"] == "/Prod/runs/r-123"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] and isinstance(context["requestTimeEpoch"], int)
    assert context["domainName"] == gateway.url.removeprefix("http://")


def test_json_body_and_trailing_slash(gateway: LocalGateway) -> None:
    payload = json.dumps({"workflow": "id", "input": {"n": 1}}).encode()
    status, _, body = call(gateway, "POST", "/runs/", payload, {"Content-Type": "application/json"})
    assert status == 201
    event = json.loads(body)
    assert event["resource"] == "/runs" and event["path"] == "/runs/"
    assert json.loads(event["body"]) == {"workflow": "id", "input": {"n": 1}}
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None and event["pathParameters"] is None


def test_literal_routes_win_over_parameters(gateway: LocalGateway) -> None:
    _, headers, _ = call(gateway, "GET", "/runs/latest")
    assert headers["X-Function"] == "Other"


def test_greedy_path_and_any_method(gateway: LocalGateway) -> None:
    _, headers, body = call(gateway, "DELETE", "/files/a/b/c.txt")
    event = json.loads(body)
    assert headers["X-Function"] == "Files" and event["pathParameters"] == {"proxy": "a/b/c.txt"}


def test_binary_bodies_travel_base64(gateway: LocalGateway) -> None:
    raw = bytes(range(256))
    _, _, body = call(gateway, "POST", "/runs", raw, {"Content-Type": "application/octet-stream"})
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw


def test_base64_responses_and_multi_value_headers(gateway: LocalGateway) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=10)
    connection.request("GET", "/binary")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b"\x89PNG\x00\xff"
    assert response.getheader("Content-Type") == "image/png"
    assert response.msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    connection.close()


def test_unknown_route_is_404_json(gateway: LocalGateway) -> None:
    status, headers, body = call(gateway, "GET", "/nope")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == "not found"


def test_wrong_method_is_405_json(gateway: LocalGateway) -> None:
    status, headers, body = call(gateway, "DELETE", "/runs/r-1")
    assert status == 405 and headers["Allow"] == "GET"
    assert json.loads(body)["error"] == "method not allowed"


def test_oversized_body_is_413_json(gateway: LocalGateway) -> None:
    status, _, body = call(gateway, "POST", "/runs", b"x" * (64 * 1024 + 1), {"Content-Type": "text/plain"})
    assert status == 413 and json.loads(body)["error"] == "request body too large"


def test_default_limit_is_lambdas_six_megabytes() -> None:
    with LocalGateway(ROUTES, echo) as gw:
        assert call(gw, "POST", "/runs", b"x" * (6 << 20), {"Content-Type": "text/plain"})[0] == 201
        assert call(gw, "POST", "/runs", b"x" * ((6 << 20) + 1), {"Content-Type": "text/plain"})[0] == 413


def test_handler_exception_is_502_without_traceback(gateway: LocalGateway,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="loopline.gateway"):
        status, _, body = call(gateway, "POST", "/boom", b"{}", {"Content-Type": "application/json"})
    assert status == 502 and json.loads(body) == {"error": "internal error"}
    assert b"Traceback" not in body and b"secret detail" not in body
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


def test_malformed_handler_response_is_502(gateway: LocalGateway) -> None:
    status, _, body = call(gateway, "GET", "/bad-response")
    assert status == 502 and json.loads(body) == {"error": "internal error"}


def test_chunked_request_body(gateway: LocalGateway) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(gateway.url.rsplit(":", 1)[1]), timeout=10)
    connection.request("POST", "/runs", body=iter([b'{"a":', b' 1}']),
                       headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 201 and json.loads(json.loads(response.read())["body"]) == {"a": 1}
    # Keep-alive: the connection serves a second request.
    connection.request("GET", "/runs/r-2")
    assert json.loads(connection.getresponse().read())["pathParameters"] == {"run_id": "r-2"}
    connection.close()


def test_quiet_by_default_and_log_callable(capfd: pytest.CaptureFixture[str]) -> None:
    with LocalGateway(ROUTES, echo) as gw:
        call(gw, "GET", "/runs/r-1")
    assert capfd.readouterr().err == ""
    lines: list[str] = []
    with LocalGateway(ROUTES, echo, log=lines.append) as gw:
        call(gw, "GET", "/runs/r-1")
    assert len(lines) == 1 and "GET /runs/r-1 -> 200" in lines[0]


def test_stop_closes_the_port() -> None:
    gw = LocalGateway(ROUTES, echo).start()
    url = gw.url
    assert url.startswith("http://127.0.0.1:")
    gw.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/runs/x", timeout=2)
