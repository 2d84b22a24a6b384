"""llm tools: the loop on the local stand-in (a real sandboxed function each call), and Bedrock Converse's
toolConfig / toolUse / toolResult wire format through botocore's Stubber (which checks every request
against the service model)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra.tasks import aws_clients, outbox
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

HERE = "tests.unit.test_task_llm_tools"
ADD = {"name": "add", "description": "Adds two integers", "function": f"{HERE}:add",
       "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                      "required": ["a", "b"]}}


def add(a: int, b: int) -> int:
    return a + b


def broken() -> None:
    raise KeyError("no such record")


def clock_time() -> str:
    return "12:00"


@pytest.fixture
def allowed(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HERE)


def test_the_local_stand_in_calls_each_tool_once_then_answers(allowed):
    tools = [ADD, {"name": "now", "function": f"{HERE}:clock_time"}]
    result = run_type("llm", {"prompt": "What is 2 + 3?", "tools": tools})
    calls = result["tool_calls"]
    assert [(c["round"], c["id"], c["name"], c["arguments"]) for c in calls] == [
        (1, "local-1", "add", {"a": 0, "b": 0}), (1, "local-2", "now", {})]
    assert [c["result"] for c in calls] == [0, "12:00"]
    assert all(isinstance(c["duration_ms"], int) and c["duration_ms"] >= 0 for c in calls)
    assert result["answer"] == run_type("llm", {"prompt": "What is 2 + 3?"})  # the answer without tools
    asked = outbox.entries("llm")[0]
    assert asked["request"]["tools"] == ["add", "now"] and len(asked["result"]["tool_calls"]) == 2
    assert run_type("llm", {"prompt": "What is 2 + 3?", "tools": tools})["tool_calls"][0]["arguments"] == \
        calls[0]["arguments"]  # deterministic


def test_a_failing_function_is_an_error_the_model_reads_not_a_failed_task(allowed):
    result = run_type("llm", {"prompt": "p", "tools": [{"name": "lookup", "function": f"{HERE}:broken"}]})
    (call,) = result["tool_calls"]
    assert call["error"]["type"] == "KeyError" and "no such record" in call["error"]["message"]
    assert "result" not in call and isinstance(result["answer"], str)


def test_a_structured_answer_after_tools(allowed):
    schema = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
    result = run_type("llm", {"prompt": "p", "tools": [ADD], "response_format": schema})
    assert result["answer"] == {"sum": 0} and result["tool_calls"][0]["result"] == 0


def test_a_module_the_deployment_does_not_allow_is_refused_by_the_sandbox_too(task_env):  # noqa: F811
    result = run_type("llm", {"prompt": "p", "tools": [{"name": "cwd", "function": "os:getcwd"}]})
    (call,) = result["tool_calls"]
    assert call["error"]["type"] == "CustomHandlerError" and "not allowed" in call["error"]["message"]


@pytest.mark.parametrize("config, fragment", [
    ({"tools": "${inputs.tools}"}, "config.tools"),
    ({"tools": [{"name": "bad name", "function": "m:f"}]}, "tool name"),
    ({"tools": [ADD, ADD]}, "same name"),
    ({"tools": [ADD], "max_tool_rounds": 0}, "max_tool_rounds"),
])
def test_a_bad_tools_config_is_invalid_config(allowed, config, fragment):
    error = failure("llm", {"prompt": "p", **config})
    assert error.error_type == "InvalidConfig" and fragment in error.message


# ------------------------------------------------------------------ bedrock


@pytest.fixture
def bedrock(allowed, monkeypatch):
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    stubber = Stubber(client)
    monkeypatch.setattr(aws_clients, "client", lambda aws, service, region=None, read_timeout=None: client)
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=bedrock")
    monkeypatch.delenv("LOOPLINE_BEDROCK_MODELS", raising=False)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def _reply(content: list, stop: str) -> dict:
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
            "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 10}}


TOOL_CONFIG = {"tools": [{"toolSpec": {"name": "add", "description": "Adds two integers",
                                       "inputSchema": {"json": ADD["parameters"]}}}]}
QUESTION = {"role": "user", "content": [{"text": "What is 2 + 3?"}]}


def test_bedrock_tool_use_round_trip(bedrock):
    asked = {"role": "assistant", "content": [{"text": "Let me add."},
                                              {"toolUse": {"toolUseId": "tu-1", "name": "add",
                                                           "input": {"a": 2, "b": 3}}}]}
    bedrock.add_response("converse", _reply(asked["content"], "tool_use"),
                         {"modelId": "m", "messages": [QUESTION], "toolConfig": TOOL_CONFIG})
    answered = {"role": "user", "content": [{"toolResult": {"toolUseId": "tu-1", "content": [{"text": "5"}],
                                                            "status": "success"}}]}
    bedrock.add_response("converse", _reply([{"text": "2 + 3 = 5"}], "end_turn"),
                         {"modelId": "m", "messages": [QUESTION, asked, answered], "toolConfig": TOOL_CONFIG})
    result = run_type("llm", {"model": "m", "prompt": "What is 2 + 3?", "tools": [ADD]})
    assert result["answer"] == "2 + 3 = 5"
    assert [(c["id"], c["name"], c["arguments"], c["result"]) for c in result["tool_calls"]] == [
        ("tu-1", "add", {"a": 2, "b": 3}, 5)]
    assert outbox.entries() == []


def test_bedrock_bad_arguments_go_back_as_an_error_result(bedrock):
    bad = {"toolUse": {"toolUseId": "tu-1", "name": "add", "input": {"a": "two"}}}
    bedrock.add_response("converse", _reply([bad], "tool_use"), {"modelId": "m", "messages": [QUESTION],
                                                                  "toolConfig": TOOL_CONFIG})
    error_result = {"toolResult": {"toolUseId": "tu-1", "content": [{"text": ANY}], "status": "error"}}
    bedrock.add_response("converse", _reply([{"text": "sorry"}], "end_turn"), {
        "modelId": "m", "toolConfig": TOOL_CONFIG,
        "messages": [QUESTION, {"role": "assistant", "content": [bad]}, {"role": "user", "content": [error_result]}]})
    result = run_type("llm", {"model": "m", "prompt": "What is 2 + 3?", "tools": [ADD]})
    (call,) = result["tool_calls"]
    assert call["error"]["type"] == "InvalidToolArguments"
    assert "at /a: 'two' is not of type 'integer'" in call["error"]["message"]
    assert "at /: 'b' is a required property" in call["error"]["message"]
    assert result["answer"] == "sorry"


def test_bedrock_a_model_that_keeps_asking_fails_after_max_tool_rounds(bedrock):
    use = {"toolUse": {"toolUseId": "tu", "name": "add", "input": {"a": 1, "b": 1}}}
    for _ in range(3):  # two rounds of tools, then a third request that still asks
        bedrock.add_response("converse", _reply([use], "tool_use"), {
            "modelId": "m", "messages": ANY, "toolConfig": TOOL_CONFIG})
    error = failure("llm", {"model": "m", "prompt": "What is 2 + 3?", "tools": [ADD], "max_tool_rounds": 2})
    assert error.error_type == "LlmToolRoundsExceeded"
    assert "max_tool_rounds=2" in error.message and "(add)" in error.message


def slow() -> None:
    import time

    time.sleep(5)


def test_the_loop_shares_the_task_timeout(allowed):
    error = failure("llm", {"prompt": "p", "timeout": "1s", "tools": [{"name": "slow", "function": f"{HERE}:slow"}]})
    assert error.error_type == "TaskTimeout" and "tool-calling loop" in error.message


def test_a_task_tool_is_named_and_described_after_its_task_unless_it_says():
    from infra.tasks.llm.tools import tool_specs
    from statemachine.llm_tools import NO_PARAMETERS

    specs = tool_specs({"tools": [{"task": "lookup"}, {"task": "t2", "name": "x", "description": "own"}]},
                       lambda task_id: f"about {task_id}")
    assert [(s.name, s.description, s.task, s.function, s.parameters) for s in specs] == [
        ("lookup", "about lookup", "lookup", None, NO_PARAMETERS), ("x", "own", "t2", None, NO_PARAMETERS)]
