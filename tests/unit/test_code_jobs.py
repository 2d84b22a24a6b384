"""Code jobs and results (issue #9): one encoding each, a strict decoder, and the decision on a result."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from infra.dispatch.jobs import (
    RUNNER_ERROR,
    TASK_TIMEOUT,
    AttemptRef,
    CodeJob,
    CodeResult,
    RunnerAnswer,
    destination_record,
    new_token,
    token_hash,
    token_matches,
)
from infra.engine.code_tasks import Verdict, judge, runs_code
from infra.ports import RunRecord, TaskRecord
from infra.sandbox.request import CodeReply, CodeRequest
from tests.conftest import compile_yaml

REF = AttemptRef("run-1", "plan-1", "t", "t", 2, 1)
REQUEST = CodeRequest(kind="python", task_id="t", run_id="run-1", config={"code": "result = 1"}, timeout=5.0,
                      namespace={"inputs": {"n": 1}})
AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:loopline-TaskRunnerFunction"


def record(job: CodeJob, response=None, error=None) -> str:
    return json.dumps(destination_record(job.to_payload(), ARN, "req-1", AT, response, error))


def test_a_token_is_256_random_bits_and_only_its_hash_matches():
    token = new_token()
    assert len(token) == 43 and token != new_token()
    assert token_matches(token, token_hash(token))
    assert not token_matches(token, token_hash(new_token()))
    assert not token_matches(token, None) and not token_matches(token, "")


def test_a_job_crosses_as_its_payload_and_back():
    job = CodeJob(REF, new_token(), REQUEST, reply_url="https://bucket.example/reply?sig=1")
    assert CodeJob.from_payload(json.loads(json.dumps(job.to_payload()))) == job
    by_url = CodeJob(REF, job.token, None, request_url="https://bucket.example/request?sig=2")
    assert CodeJob.from_payload(by_url.to_payload()) == by_url


@pytest.mark.parametrize("change", [
    {"v": 2}, {"token": "short"}, {"token": None}, {"attempt": {**REF.to_dict(), "attempt": "2"}},
    {"attempt": {**REF.to_dict(), "run": ""}}, {"request_url": "file:///etc/passwd"},
    {"reply_url": "ftp://x"}, {"request_url": "https://a.example/r"},  # both the request and a URL
])
def test_a_malformed_job_is_refused(change):
    payload = {**CodeJob(REF, new_token(), REQUEST).to_payload(), **change}
    with pytest.raises(ValueError):
        CodeJob.from_payload(payload)


def test_a_success_record_decodes_to_the_reply():
    job = CodeJob(REF, new_token(), REQUEST)
    answer = RunnerAnswer(reply=CodeReply(output={"x": 1}, names={"result": {"x": 1}}, printed="hello\n"))
    result = CodeResult.from_record(record(job, answer.to_dict()))
    assert result == CodeResult(REF, job.token, reply=answer.reply)
    uploaded = CodeResult.from_record(record(job, RunnerAnswer(uploaded=True).to_dict()))
    assert uploaded.uploaded and uploaded.reply is None and uploaded.failure is None


def test_the_documented_failure_records_become_task_failures():
    job = CodeJob(REF, new_token(), REQUEST)
    timed_out = CodeResult.from_record(record(job, error={
        "errorMessage": "2026-01-02T03:04:05.678Z req-1 Task timed out after 900.00 seconds"}))
    assert timed_out.failure["type"] == TASK_TIMEOUT and timed_out.token == job.token
    sandbox = CodeResult.from_record(record(job, error={"errorType": "Sandbox.Timedout", "errorMessage": "x"}))
    assert sandbox.failure["type"] == TASK_TIMEOUT
    crashed = CodeResult.from_record(record(job, error={"errorType": "Runtime.ExitError",
                                                        "errorMessage": "RequestId: r Error: Runtime exited"}))
    assert crashed.failure == {
        "type": RUNNER_ERROR,
        "message": "the task runner failed: Runtime.ExitError: RequestId: r Error: Runtime exited"}
    aged = json.loads(record(job, error={}))
    aged["requestContext"]["condition"] = "EventAgeExceeded"
    del aged["responsePayload"], aged["responseContext"]
    assert CodeResult.from_record(json.dumps(aged)).failure["type"] == RUNNER_ERROR


@pytest.mark.parametrize("body", [
    "not json", "[]", json.dumps({"k": "exec", "run": "r", "plan": "p", "task": "t", "attempt": 1}),
    json.dumps({"requestContext": {"condition": "Success"}, "requestPayload": {"v": 1}}),
    json.dumps({"requestContext": {"condition": "Bogus"},
                "requestPayload": CodeJob(REF, new_token(), REQUEST).to_payload()}),
    json.dumps({"requestContext": {"condition": "Success"},
                "requestPayload": CodeJob(REF, new_token(), REQUEST).to_payload(), "responsePayload": {"v": 9}}),
])
def test_anything_but_a_destination_record_of_a_job_is_refused(body):
    with pytest.raises(ValueError):
        CodeResult.from_record(body)


# ---------------------------------------------------------------- the decision on a result

RUN = RunRecord("run-1", "plan-1", "wf")
TOKEN = new_token()


def running(**fields) -> TaskRecord:
    return TaskRecord("t", **{"status": "RUNNING", "attempt": 2, "redrive": 1, "token_hash": token_hash(TOKEN),
                              **fields})


def result(token=TOKEN, ref=REF) -> CodeResult:
    return CodeResult(ref, token, reply=CodeReply(output=1))


@pytest.mark.parametrize("rec, res, verdict", [
    (running(), result(), Verdict.ACCEPT),
    (running(), result(token=new_token()), Verdict.DROP),  # forged: the token is not the attempt's
    (running(token_hash=None), result(), Verdict.DROP),
    (running(), result(ref=AttemptRef("run-1", "plan-1", "t", "t", 1, 1)), Verdict.DROP),  # an earlier attempt
    (running(), result(ref=AttemptRef("run-1", "plan-1", "t", "t", 2, 0)), Verdict.DROP),  # before a redrive
    (running(status="COMPLETED"), result(), Verdict.REPLAY),  # delivered again after it was recorded
    (running(status="FAILED"), result(), Verdict.REPLAY),
    (running(status="RETRYING", attempt=3), result(), Verdict.REPLAY),
    (running(status="RUNNING", attempt=3, token_hash=token_hash(new_token())), result(), Verdict.DROP),
    (running(status="PENDING"), result(), Verdict.DROP),
    (None, result(), Verdict.DROP),
])
def test_only_the_attempts_own_token_speaks_for_it(rec, res, verdict):
    assert judge(RUN, rec, res)[0] is verdict


def test_a_result_for_a_run_that_is_over_changes_nothing():
    for status in ("COMPLETED", "FAILED", "CANCELLED"):
        assert judge(RunRecord("run-1", "plan-1", "wf", status=status), running(), result())[0] is Verdict.DROP
    assert judge(None, running(), result())[0] is Verdict.DROP


def test_code_tasks_run_their_code_once_their_gate_is_decided():
    plan = compile_yaml("""
        workflow:
          metadata: {id: kinds}
          tasks:
            - {id: py, type: python, config: {code: "result = 1"}}
            - {id: sh, type: shell, config: {command: [echo]}}
            - {id: web, type: http, config: {url: "https://example.com"}}
            - {id: gated, type: python, config: {code: "result = 1"}, requires_approval: {approvers: [a@example.com]}}
        """)
    nodes = plan.nodes
    assert runs_code(nodes["py"], TaskRecord("py")) and runs_code(nodes["sh"], TaskRecord("sh"))
    assert not runs_code(nodes["web"], TaskRecord("web"))
    assert not runs_code(nodes["gated"], TaskRecord("gated"))  # its approval first
    assert runs_code(nodes["gated"], TaskRecord("gated", approval={"result": {"decision": "APPROVED"}}))
