"""llm tools on an OpenAI-compatible endpoint: a server on 127.0.0.1 speaking chat completions' function
calling (``tools``, the reply's ``tool_calls``, ``role: tool`` messages), each function run in the sandbox."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_task_llm_tools import ADD, HERE
from tests.unit.test_task_settings import failure, run_type, server, task_env  # noqa: F401


@pytest.fixture
def model(task_env, server, monkeypatch):  # noqa: F811
    """The chat completions route answering with the queued messages, in order."""
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HERE)
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=openai")
    monkeypatch.setenv("LOOPLINE_OPENAI_BASE_URL", server.url)
    replies: list[dict] = []

    def answer(request):
        message = replies.pop(0) if len(replies) > 1 else replies[0]  # the last one repeats
        body = {"id": "c1", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", **message},
             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    server.routes[("POST", "/v1/chat/completions")] = answer
    return replies


def call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_calls_are_run_and_answered_with_tool_messages(model, server):  # noqa: F811
    model.append({"content": None, "tool_calls": [call("call_1", "add", '{"a": 2, "b": 3}'),
                                                  call("call_2", "mul", "{}")]})
    model.append({"content": "2 + 3 = 5"})
    result = run_type("llm", {"model": "m", "prompt": "What is 2 + 3?", "system_message": "Use the tools.",
                              "tools": [ADD]})
    assert result["answer"] == "2 + 3 = 5"
    assert [(c["id"], c["name"], c.get("result"), c.get("error", {}).get("type")) for c in result["tool_calls"]] == [
        ("call_1", "add", 5, None), ("call_2", "mul", None, "UnknownTool")]
    first, second = (json.loads(r["body"]) for r in server.requests)
    assert first["tools"] == [{"type": "function", "function": {
        "name": "add", "description": "Adds two integers", "parameters": ADD["parameters"]}}]
    assert first["messages"] == [{"role": "system", "content": "Use the tools."},
                                 {"role": "user", "content": "What is 2 + 3?"}]
    assert second["messages"][2] == {"role": "assistant", "content": None, "tool_calls": [
        call("call_1", "add", '{"a": 2, "b": 3}'), call("call_2", "mul", "{}")]}
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "5"}
    unknown = second["messages"][4]
    assert unknown["role"] == "tool" and unknown["tool_call_id"] == "call_2"
    assert json.loads(unknown["content"])["error"]["type"] == "UnknownTool"


def test_arguments_that_are_not_json_are_an_error_the_model_reads(model, server):  # noqa: F811
    model.append({"content": "", "tool_calls": [call("c", "add", "{a: 2")]})
    model.append({"content": "I could not add."})
    result = run_type("llm", {"model": "m", "prompt": "p", "tools": [ADD]})
    (recorded,) = result["tool_calls"]
    assert recorded["arguments"] == "{a: 2" and recorded["error"]["type"] == "InvalidToolArguments"
    assert "must be a JSON object" in json.loads(json.loads(server.requests[1]["body"])["messages"][-1]["content"])[
        "error"]["message"]


def test_a_model_that_keeps_calling_tools_fails_after_max_tool_rounds(model, server):  # noqa: F811
    model.append({"content": None, "tool_calls": [call("c", "add", '{"a": 1, "b": 1}')]})
    error = failure("llm", {"model": "m", "prompt": "p", "tools": [ADD]})
    assert error.error_type == "LlmToolRoundsExceeded" and "max_tool_rounds=5" in error.message
    assert len(server.requests) == 6  # five rounds of tools, then the reply that still asked


def test_a_structured_answer_after_tools_is_validated(model, server):  # noqa: F811
    schema = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
    model.append({"content": None, "tool_calls": [call("c", "add", '{"a": 2, "b": 3}')]})
    model.append({"content": '{"sum": 5}'})
    result = run_type("llm", {"model": "m", "prompt": "p", "tools": [ADD], "response_format": schema})
    assert result == {"answer": {"sum": 5}, "tool_calls": [
        {"round": 1, "id": "c", "name": "add", "arguments": {"a": 2, "b": 3}, "result": 5,
         "duration_ms": result["tool_calls"][0]["duration_ms"]}]}
    assert all(json.loads(r["body"])["response_format"]["json_schema"]["schema"] == schema for r in server.requests)
