"""Task types that speak HTTP, against a server on 127.0.0.1: http, the openai llm provider,
the voice webhook provider and the browser's http stand-in."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from infra.tasks import outbox
from tests.unit.test_task_settings import failure, run_type, server, task_env  # noqa: F401


@pytest.fixture(autouse=True)
def loopback_allowed(task_env, monkeypatch):  # noqa: F811
    """These tests talk to servers on 127.0.0.1, which tasks may reach only when the deployment names it in
    LOOPLINE_EGRESS_ALLOW (tests/component/test_egress.py checks the refusal without it)."""
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")

# ====================================================================== http


def test_get_json_is_parsed(task_env, server):  # noqa: F811
    server.json("GET", "/articles", {"articles": [{"id": 1}]}, headers={"X-Total": "1"})
    result = run_type("http", {"method": "GET", "url": server.url + "/articles",
                               "headers": {"Authorization": "Bearer k"}})
    assert result["status"] == 200
    assert result["data"] == {"articles": [{"id": 1}]}
    assert result["headers"]["content-type"] == "application/json"
    assert result["headers"]["x-total"] == "1"
    assert server.requests[0]["headers"]["Authorization"] == "Bearer k"


def test_text_responses_are_text_and_query_params_are_encoded(task_env, server):  # noqa: F811
    server.text("GET", "/hello", "hi there")
    result = run_type("http", {"url": server.url + "/hello", "query": {"q": "a b&c", "n": [1, 2]}})
    assert result["data"] == "hi there"
    assert server.requests[0]["path"] == "/hello?q=a+b%26c&n=1&n=2"


def test_a_dict_body_is_sent_as_json_and_a_body_defaults_to_post(task_env, server):  # noqa: F811
    server.routes[("POST", "/echo")] = lambda r: (201, {"Content-Type": "application/json"}, r["body"])
    result = run_type("http", {"url": server.url + "/echo", "body": {"records": [1, 2], "ok": True}})
    assert result["status"] == 201 and result["data"] == {"records": [1, 2], "ok": True}
    assert server.requests[0]["method"] == "POST"
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"


def test_a_string_body_is_sent_as_is_with_the_given_content_type(task_env, server):  # noqa: F811
    server.routes[("PUT", "/raw")] = lambda r: (200, {"Content-Type": "text/csv"}, r["body"])
    result = run_type("http", {"method": "put", "url": server.url + "/raw", "body": "a,b\n1,2",
                               "headers": {"Content-Type": "text/csv"}})
    assert result["data"] == "a,b\n1,2"
    assert server.requests[0]["headers"]["Content-Type"] == "text/csv"


def test_status_400_and_above_is_an_http_error_with_status_reason_and_body(task_env, server):  # noqa: F811
    server.json("GET", "/missing", {"error": "no such article"}, status=404)
    error = failure("http", {"url": server.url + "/missing"})
    assert error.error_type == "HttpError"
    assert error.message.startswith("404 Not Found: ")
    assert "no such article" in error.message
    server.text("POST", "/boom", "x" * 5000, status=503)
    error = failure("http", {"method": "POST", "url": server.url + "/boom"})
    assert error.message.startswith("503 Service Unavailable: xxx") and len(error.message) < 600


def test_redirects_are_followed(task_env, server):  # noqa: F811
    server.routes[("GET", "/old")] = lambda r: (302, {"Location": "/new"}, "")
    server.json("GET", "/new", {"moved": True})
    assert run_type("http", {"url": server.url + "/old"})["data"] == {"moved": True}


def test_a_slow_server_is_a_task_timeout(task_env, server):  # noqa: F811
    def slow(request):
        time.sleep(1.5)
        return 200, {}, "late"

    server.routes[("GET", "/slow")] = slow
    error = failure("http", {"url": server.url + "/slow", "timeout": "300ms"})
    assert error.error_type == "TaskTimeout"


def test_a_refused_connection_is_an_http_connection_error(task_env, server):  # noqa: F811
    url = server.url
    server.close()
    error = failure("http", {"url": url + "/x", "timeout": "2s"})
    assert error.error_type == "HttpConnectionError"


@pytest.mark.parametrize("config", [
    {"url": "file:///etc/passwd"}, {"url": "ftp://example.com/x"}, {"url": "not a url"}, {},
    {"url": "http://127.0.0.1:1/", "method": "FETCH"}, {"url": "http://127.0.0.1:1/", "timeout": "soon"},
])
def test_bad_config_is_invalid_config(task_env, config):  # noqa: F811
    assert failure("http", config).error_type == "InvalidConfig"


# ================================================================ openai llm


@pytest.fixture
def openai(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=openai")
    monkeypatch.setenv("LOOPLINE_OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("LOOPLINE_OPENAI_API_KEY", "sk-test")
    replies: list[tuple[int, object]] = []

    def answer(request):
        status, content = replies.pop(0)
        if status != 200:
            return status, {"Content-Type": "application/json"}, json.dumps({"error": {"message": content}})
        body = {"id": "c1", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    server.routes[("POST", "/v1/chat/completions")] = answer
    return replies


def test_openai_chat_completion_text(openai, server):  # noqa: F811
    openai.append((200, "Paris."))
    result = run_type("llm", {"model": "gpt-5.2", "prompt": "Capital of France?", "system_message": "One word.",
                              "temperature": 0, "max_tokens": 5})
    assert result == "Paris."
    request = server.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = json.loads(request["body"])
    assert body == {"model": "gpt-5.2", "temperature": 0.0, "max_tokens": 5,
                    "messages": [{"role": "system", "content": "One word."},
                                 {"role": "user", "content": "Capital of France?"}]}
    assert outbox.entries() == []


def test_openai_structured_answer_uses_json_schema_and_is_validated(openai, server):  # noqa: F811
    schema = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}
    openai.append((200, '{"score": 91}'))
    openai.append((200, '{"points": 91}'))
    assert run_type("llm", {"model": "m", "prompt": "rate it", "response_format": schema}) == {"score": 91}
    sent = json.loads(server.requests[0]["body"])
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    error = failure("llm", {"model": "m", "prompt": "rate it", "response_format": schema})
    assert error.error_type == "LlmResponseError"


def test_a_base_url_with_a_path_gets_only_chat_completions(openai, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_OPENAI_BASE_URL", server.url + "/v1/")
    openai.append((200, "ok"))
    assert run_type("llm", {"model": "m", "prompt": "p"}) == "ok"
    assert server.requests[0]["path"] == "/v1/chat/completions"


@pytest.mark.parametrize("status, error_type", [(429, "LlmThrottled"), (500, "LlmProviderError"),
                                                (401, "LlmProviderError")])
def test_openai_errors_are_typed(openai, status, error_type):
    openai.append((status, "nope"))
    error = failure("llm", {"model": "m", "prompt": "p"})
    assert error.error_type == error_type
    assert str(status) in error.message


def test_openai_without_a_base_url_is_a_provider_config_error(openai, monkeypatch):
    monkeypatch.delenv("LOOPLINE_OPENAI_BASE_URL")
    assert failure("llm", {"model": "m", "prompt": "p"}).error_type == "ProviderConfigError"


def test_the_seed_schema_round_trips_through_the_local_stand_in(task_env):  # noqa: F811
    schema = {"type": "object", "properties": {"summary": {"type": "string"},
                                               "key_points": {"type": "array", "items": {"type": "string"}}}}
    jsonschema.validate(run_type("llm", {"model": "gpt-5.2", "prompt": "x", "response_format": schema}), schema)


# ============================================================== voice webhook


def test_voice_webhook_posts_to_message_voice(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "voice=webhook")
    monkeypatch.setenv("LOOPLINE_VOICE_WEBHOOK_URL", server.url + "/calls")
    monkeypatch.setenv("LOOPLINE_VOICE_WEBHOOK_TOKEN", "tok")
    server.json("POST", "/calls", {"sid": "CA123"}, status=201)
    result = run_type("voice", {"to": "+1 555-123-4567", "message": "Your order shipped", "voice": "alice"})
    assert result == {"message_id": "CA123", "to": "+15551234567"}
    request = server.requests[0]
    assert json.loads(request["body"]) == {"to": "+15551234567", "message": "Your order shipped", "voice": "alice"}
    assert request["headers"]["Authorization"] == "Bearer tok"
    assert request["headers"]["Idempotency-Key"] == "run-1:t1"
    assert outbox.entries() == []


def test_voice_webhook_failures_are_voice_errors(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDER_DEFAULTS", "aws")  # webhook is the aws default
    monkeypatch.setenv("LOOPLINE_VOICE_WEBHOOK_URL", server.url + "/calls")
    server.text("POST", "/calls", "bad number", status=400)
    error = failure("voice", {"to": "+15551234567", "message": "hi"})
    assert error.error_type == "VoiceError" and "bad number" in error.message
    monkeypatch.delenv("LOOPLINE_VOICE_WEBHOOK_URL")
    assert failure("voice", {"to": "+15551234567", "message": "hi"}).error_type == "ProviderConfigError"


# ======================================================== browser stand-in

PAGE = """<!doctype html><html><head><title> Shop
  front </title><style>.x{}</style></head>
<body><h1 id="top" class="hero big">Welcome</h1>
<ul class="items"><li class="item">One <b>bold</b></li><li class="item sale">Two<script>var x=1</script></li>
<li>Three</li></ul><p class="item">Not in the list</p><a href="/next" class="nav">next</a><br><img src="x.png">
</body></html>"""


@pytest.fixture
def page(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=http")
    server.text("GET", "/shop", PAGE, content_type="text/html; charset=utf-8")
    return server.url + "/shop"


def test_stand_in_navigate(page):
    assert run_type("browser", {"action": "navigate", "url": page}) == {"url": page, "status": 200,
                                                                       "title": "Shop front"}


@pytest.mark.parametrize("selector, texts", [
    ("li.item", ["One bold", "Two"]),
    ("#top", ["Welcome"]),
    (".item", ["One bold", "Two", "Not in the list"]),
    ("ul li", ["One bold", "Two", "Three"]),
    (".items .sale", ["Two"]),
    ("h1.hero.big", ["Welcome"]),
    ("h1, a.nav", ["Welcome", "next"]),
    ("table", []),
])
def test_stand_in_extract_with_the_selector_subset(page, selector, texts):
    result = run_type("browser", {"action": "extract", "url": page, "selector": selector})
    assert result["texts"] == texts
    assert result["count"] == len(texts)
    assert result["text"] == (texts[0] if texts else None)
    assert result["title"] == "Shop front" and result["selector"] == selector


def test_stand_in_extract_an_attribute(page):
    result = run_type("browser", {"action": "extract", "url": page, "selector": "a", "attribute": "href"})
    assert result["texts"] == ["/next"]


def test_stand_in_cannot_screenshot_click_or_type(page):
    for action in ("screenshot", "click", "type"):
        error = failure("browser", {"action": action, "url": page, "selector": "a"})
        assert error.error_type == "BrowserUnavailable"


def test_stand_in_wait_for_a_missing_element_and_unsupported_selectors(page):
    assert failure("browser", {"action": "navigate", "url": page, "wait_for": "#nope"}).error_type == \
        "BrowserElementNotFound"
    assert failure("browser", {"action": "extract", "url": page, "selector": "ul > li"}).error_type == \
        "InvalidConfig"


def test_stand_in_navigation_errors(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "browser=http")
    server.text("GET", "/gone", "<title>Gone</title>", status=404, content_type="text/html")
    # A page that answers 404 is still a page, as in a browser.
    assert run_type("browser", {"url": server.url + "/gone"})["status"] == 404
    url = server.url
    server.close()
    assert failure("browser", {"url": url + "/x"}).error_type == "BrowserNavigationError"
    assert failure("browser", {"url": "file:///etc/passwd"}).error_type == "InvalidConfig"
