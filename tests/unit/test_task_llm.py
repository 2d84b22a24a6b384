"""The llm task type: the deterministic local stand-in, response_format validation, Bedrock Converse (Stubber)."""

from __future__ import annotations

import json

import boto3
import jsonschema
import pytest
from botocore.stub import Stubber

from infra.tasks import aws_clients, llm, outbox
from infra.tasks.base import TaskFailure
from infra.tasks.common import TaskMeta
from infra.tasks.llm.local import LocalLlm
from infra.tasks.llm.request import LlmRequest, schema_instruction
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

SEED_SCHEMA = {  # seed 003 example 1
    "type": "object",
    "properties": {"summary": {"type": "string"}, "key_points": {"type": "array", "items": {"type": "string"}}},
}


def test_local_text_answer_is_deterministic_and_recorded(task_env):  # noqa: F811
    config = {"model": "gpt-5.2", "prompt": "Summarize:  the   news", "system_message": "be brief"}
    first = run_type("llm", config)
    assert first == run_type("llm", config)
    assert isinstance(first, str) and "Summarize: the news" in first
    assert first != run_type("llm", {**config, "prompt": "something else"})
    entries = outbox.entries("llm")
    assert len(entries) == 3
    assert entries[0]["request"]["prompt"] == "Summarize:  the   news"
    assert entries[0]["request"]["system_message"] == "be brief"
    assert entries[0]["result"] == {"text": first}
    assert entries[0]["task_id"] == "t1" and entries[0]["run_id"] == "run-1"


def test_local_structured_answer_validates_against_the_schema(task_env):  # noqa: F811
    result = run_type("llm", {"model": "m", "prompt": "p", "response_format": SEED_SCHEMA})
    jsonschema.validate(result, SEED_SCHEMA)
    assert set(result) == {"summary", "key_points"}
    assert result == run_type("llm", {"model": "m", "prompt": "p", "response_format": SEED_SCHEMA})


SCHEMAS = [
    {"type": "object", "properties": {"quality_score": {"type": "number"}, "policy_compliant": {"type": "boolean"},
                                      "suggestions": {"type": "string"}}},
    {"type": "object", "required": ["id", "tags"], "additionalProperties": False,
     "properties": {"id": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 3},
                    "tags": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"enum": ["a", "b"]}},
                    "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}},
    {"type": "string", "minLength": 40},
    {"type": "string", "maxLength": 3},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "date-time"},
    {"type": ["null", "integer"], "minimum": -5, "maximum": -2},
    {"type": "number", "maximum": -0.5},
    {"type": "integer", "exclusiveMaximum": -3},
    {"const": {"fixed": True}},
    {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]},
    {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"type": "integer", "minimum": 1}}, "required": ["b"]}]},
    {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                         "required": ["x", "y"]}},
     "type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 1},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {"type": "object", "required": ["free"]},
    {"type": "object", "properties": {"nested": {"type": "object", "properties": {"deep": {
        "type": "array", "items": {"type": "object", "properties": {"v": {"type": "boolean"}}}}}}}},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
def test_local_samples_validate_for_every_kind_of_schema(task_env, schema):  # noqa: F811
    result = run_type("llm", {"prompt": "p", "response_format": schema})
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert not list(validator.iter_errors(result)), result


def test_an_openai_style_response_format_is_unwrapped(task_env):  # noqa: F811
    wrapped = {"type": "json_schema", "json_schema": {"name": "x", "schema": SEED_SCHEMA}}
    result = run_type("llm", {"prompt": "p", "response_format": wrapped})
    jsonschema.validate(result, SEED_SCHEMA)


def test_an_invalid_schema_is_invalid_config(task_env):  # noqa: F811
    error = failure("llm", {"prompt": "p", "response_format": {"type": "banana"}})
    assert error.error_type == "InvalidConfig"


@pytest.mark.parametrize("config", [{}, {"prompt": "p", "temperature": "hot"}, {"prompt": "p", "max_tokens": 0},
                                    {"prompt": "p", "response_format": "json"}])
def test_bad_config_is_invalid_config(task_env, config):  # noqa: F811
    assert failure("llm", config).error_type == "InvalidConfig"


@pytest.mark.parametrize("text, value", [
    ('{"a": 1}', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Here you go: {"a": {"b": 2}} hope it helps', {"a": {"b": 2}}),
    ("[1, 2]", [1, 2]),
])
def test_json_answers_are_parsed_from_common_wrappings(text, value):
    assert llm.parse_json_answer(text) == value


def test_a_non_json_answer_is_an_llm_response_error():
    with pytest.raises(TaskFailure) as caught:
        llm.parse_json_answer("I cannot do that")
    assert caught.value.error_type == "LlmResponseError"


# ------------------------------------------------------------------ bedrock


@pytest.fixture
def bedrock(task_env, monkeypatch):  # noqa: F811
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    stubber = Stubber(client)
    seen = {}

    def fake_client(aws, service, region=None, read_timeout=None):
        seen.update(service=service, region=region, read_timeout=read_timeout)
        return client

    monkeypatch.setattr(aws_clients, "client", fake_client)
    monkeypatch.setenv("LOOPLINE_PROVIDERS", "llm=bedrock")
    monkeypatch.delenv("LOOPLINE_BEDROCK_MODELS", raising=False)  # an embedded stack's setting may linger
    with stubber:
        yield stubber, seen
    stubber.assert_no_pending_responses()


def _converse_reply(text: str) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 10}}


def test_bedrock_converse_text(bedrock):
    stubber, seen = bedrock
    stubber.add_response("converse", _converse_reply("Paris."), {
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Capital of France?"}]}],
        "system": [{"text": "Answer in one word."}],
        "inferenceConfig": {"temperature": 0.2, "maxTokens": 50},
    })
    result = run_type("llm", {"model": "anthropic.claude-3-haiku-20240307-v1:0", "prompt": "Capital of France?",
                              "system_message": "Answer in one word.", "temperature": 0.2, "max_tokens": 50,
                              "timeout": "20s"})
    assert result == "Paris."
    assert seen == {"service": "bedrock-runtime", "region": None, "read_timeout": 20.0}
    assert outbox.entries() == []  # a real provider records nothing


def test_bedrock_structured_answer_is_parsed_and_validated(bedrock):
    stubber, _ = bedrock
    answer = {"summary": "s", "key_points": ["a"]}
    expected = {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "p"}]}],
                "system": [{"text": schema_instruction(SEED_SCHEMA)}]}
    stubber.add_response("converse", _converse_reply("```json\n" + json.dumps(answer) + "\n```"), expected)
    stubber.add_response("converse", _converse_reply('{"summary": 3}'), expected)
    assert run_type("llm", {"model": "m", "prompt": "p", "response_format": SEED_SCHEMA}) == answer
    error = failure("llm", {"model": "m", "prompt": "p", "response_format": SEED_SCHEMA})
    assert error.error_type == "LlmResponseError"
    assert "/summary" in error.message


@pytest.mark.parametrize("code, error_type", [("ThrottlingException", "LlmThrottled"),
                                              ("ValidationException", "LlmProviderError"),
                                              ("AccessDeniedException", "LlmProviderError")])
def test_bedrock_errors_are_typed(bedrock, code, error_type):
    stubber, _ = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=400)
    error = failure("llm", {"model": "m", "prompt": "p"})
    assert error.error_type == error_type
    assert code in error.message


def test_bedrock_calls_only_the_models_the_deployment_lists(bedrock, monkeypatch):
    """Issue #9 item 17: template.yaml grants bedrock:InvokeModel on BedrockModelArns alone, and
    passes the list on, so a model outside it fails naming the parameter (no call is made)."""
    stubber, _ = bedrock
    monkeypatch.setenv("LOOPLINE_BEDROCK_MODELS", "")
    error = failure("llm", {"model": "anthropic.claude-3-haiku-20240307-v1:0", "prompt": "p"})
    assert error.error_type == "ProviderConfigError" and "BedrockModelArns" in error.message
    monkeypatch.setenv("LOOPLINE_BEDROCK_MODELS", "arn:aws:bedrock:us-east-1::foundation-model/a.small-v1:0,"
                       "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.a.large-v2:0")
    assert "a.small-v1:0" in failure("llm", {"model": "a.large-v2:0", "prompt": "p"}).message
    stubber.add_response("converse", _converse_reply("yes"), {
        "modelId": "us.a.large-v2:0", "messages": [{"role": "user", "content": [{"text": "p"}]}]})
    stubber.add_response("converse", _converse_reply("ok"), {
        "modelId": "arn:aws:bedrock:us-east-1::foundation-model/a.small-v1:0",
        "messages": [{"role": "user", "content": [{"text": "p"}]}]})
    assert run_type("llm", {"model": "us.a.large-v2:0", "prompt": "p"}) == "yes"
    assert run_type("llm", {"model": "arn:aws:bedrock:us-east-1::foundation-model/a.small-v1:0",
                            "prompt": "p"}) == "ok"


def test_bedrock_needs_a_model(bedrock):
    assert failure("llm", {"prompt": "p"}).error_type == "InvalidConfig"


def test_the_local_provider_is_used_directly_too(task_env):  # noqa: F811
    meta = TaskMeta("x", "r")
    request = LlmRequest(model=None, prompt="hello", schema={"type": "integer", "minimum": 5})
    assert LocalLlm().complete(request, meta) == "5"


def test_the_default_timeout_fits_the_worker():
    """Issue #9 item 8: an llm task runs in the worker, which gives a task at most 25 s."""
    from infra.tasks import llm
    from infra.tasks.registry import worker_timeout
    from statemachine.limits import MAX_WORKER_TASK_TIMEOUT

    assert llm.DEFAULT_TIMEOUT <= MAX_WORKER_TASK_TIMEOUT
    assert worker_timeout(None) == worker_timeout(600) == MAX_WORKER_TASK_TIMEOUT and worker_timeout(5) == 5
