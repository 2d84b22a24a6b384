"""One attempt of workflow code as it travels to the task runner and back: one typed value, one encoding each.

- :class:`CodeJob`: what the worker sends (the attempt's coordinates, a fresh token, the request
  or a URL to fetch it from, a URL to put a large reply to). It is the Lambda invoke's payload.
- :class:`RunnerAnswer`: what the runner returns (the reply, or "put at the reply URL").
- :class:`CodeResult`: what comes back on the result queue. Lambda wraps the job and the answer
  (or the runner's failure) into an asynchronous-invocation *destination record*; that record,
  and only that shape, is decoded here into one value. :func:`destination_record` builds the
  same shape for the emulations (the embedded runtime, local mode).

Nothing in a result is trusted: anyone able to send to the result queue can write one. The
engine accepts a result only for the attempt whose stored token hash it matches
(``infra/engine/code_tasks.py``); the token is 256 random bits, never stored, and reaches
only the runner, never the task's code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..sandbox.request import CodeReply, CodeRequest

VERSION = 1
# A request or a reply larger than this (JSON bytes) goes through the payload bucket by presigned
# URL: the invoke payload and the destination record (which repeats the request and carries the
# reply) must stay well inside Lambda's asynchronous payload limit and an SQS message.
INLINE_LIMIT = 100_000
TASK_TIMEOUT = "TaskTimeout"
RUNNER_ERROR = "TaskRunnerError"
_MAX_ERROR_TEXT = 1000


def new_token() -> str:
    """256 random bits: the only credential a result carries for its attempt."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str | None) -> bool:
    # compare_digest: the time taken says nothing about how much of a guess was right.
    return bool(stored_hash) and hmac.compare_digest(token_hash(token), str(stored_hash))


@dataclass(frozen=True)
class AttemptRef:
    """Which attempt of which task a job is for (``key``: the task's item, ``epoch``: its redrive stamp)."""

    run_id: str
    plan_hash: str
    task_id: str
    key: str
    attempt: int
    epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "plan": self.plan_hash, "task": self.task_id, "key": self.key,
                "attempt": self.attempt, "epoch": self.epoch}

    @classmethod
    def from_dict(cls, data: Any) -> AttemptRef:
        if not isinstance(data, dict):
            raise ValueError("an attempt must be an object")
        texts = [data.get(name) for name in ("run", "plan", "task", "key")]
        numbers = [data.get(name) for name in ("attempt", "epoch")]
        if not all(isinstance(t, str) and t and len(t) <= 512 for t in texts):
            raise ValueError("an attempt's run, plan, task and key must be non-empty strings")
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 31 for n in numbers):
            raise ValueError("an attempt's attempt and epoch must be small non-negative integers")
        return cls(data["run"], data["plan"], data["task"], data["key"], data["attempt"], data["epoch"])


@dataclass(frozen=True)
class CodeJob:
    attempt: AttemptRef
    token: str
    request: CodeRequest | None = None  # inline, or ...
    request_url: str | None = None  # ... fetched from here (a presigned GET of one object)
    reply_url: str | None = None  # a reply over INLINE_LIMIT is put here (a presigned PUT of one object)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"v": VERSION, "attempt": self.attempt.to_dict(), "token": self.token}
        if self.request is not None:
            payload["request"] = json.loads(self.request.to_json())
        if self.request_url:
            payload["request_url"] = self.request_url
        if self.reply_url:
            payload["reply_url"] = self.reply_url
        return payload

    @classmethod
    def from_payload(cls, payload: Any) -> CodeJob:
        attempt, token = _header(payload)
        request = payload.get("request")
        request_url, reply_url = payload.get("request_url"), payload.get("reply_url")
        if (request is None) == (request_url is None):
            raise ValueError("a job carries either its request or the URL to fetch it from")
        for url in (request_url, reply_url):
            if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
                raise ValueError("a job's URLs must be http(s) URLs")
        return cls(attempt, token, CodeRequest.from_json(json.dumps(request)) if request is not None else None,
                   request_url, reply_url)


def _header(payload: Any) -> tuple[AttemptRef, str]:
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise ValueError("not a code job")
    token = payload.get("token")
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        raise ValueError("a code job's token is missing")
    return AttemptRef.from_dict(payload.get("attempt")), token


@dataclass(frozen=True)
class RunnerAnswer:
    """The runner's return value: the reply inline, or ``uploaded`` (put at the job's reply URL)."""

    reply: CodeReply | None = None
    uploaded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"v": VERSION, "reply_uploaded": True} if self.uploaded else \
            {"v": VERSION, "reply": json.loads(self.reply.to_json() if self.reply else CodeReply().to_json())}

    @classmethod
    def from_dict(cls, data: Any) -> RunnerAnswer:
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ValueError("not a task runner's answer")
        if data.get("reply_uploaded") is True:
            return cls(uploaded=True)
        return cls(reply=CodeReply.from_json(json.dumps(data.get("reply"))))


@dataclass(frozen=True)
class CodeResult:
    """One attempt's outcome as the result queue delivers it: exactly one of ``reply`` (inline),
    ``uploaded`` (the reply is in the attempt's reply object) or ``failure`` (the runner gave no
    answer: it crashed, timed out, or never started; ``{"type", "message"}``)."""

    attempt: AttemptRef
    token: str
    reply: CodeReply | None = None
    uploaded: bool = False
    failure: dict[str, str] | None = None

    @classmethod
    def from_record(cls, body: str | bytes) -> CodeResult:
        """Decode a Lambda destination record; ValueError for anything else."""
        try:
            record = json.loads(body)
        except (TypeError, ValueError) as exc:
            raise ValueError("a result that is not JSON") from exc
        if not isinstance(record, dict) or not isinstance(record.get("requestContext"), dict):
            raise ValueError("not a Lambda destination record")
        condition = record["requestContext"].get("condition")
        attempt, token = _header(record.get("requestPayload"))
        response = record.get("responsePayload")
        if condition == "Success" and not (record.get("responseContext") or {}).get("functionError"):
            answer = RunnerAnswer.from_dict(response)
            return cls(attempt, token, reply=answer.reply, uploaded=answer.uploaded)
        if condition not in ("RetriesExhausted", "EventAgeExceeded", "Success"):
            raise ValueError(f"unknown destination condition {condition!r}")
        return cls(attempt, token, failure=runner_failure(condition, response))


def runner_failure(condition: str, response: Any) -> dict[str, str]:
    """What a Lambda failure means for the task: a timeout is the task's TaskTimeout; anything else
    (the runner crashed, ran out of memory, was never started) a TaskRunnerError."""
    response = response if isinstance(response, dict) else {}
    kind = str(response.get("errorType") or "")
    message = str(response.get("errorMessage") or "")[:_MAX_ERROR_TEXT]
    if kind == "Sandbox.Timedout" or "Task timed out" in message:
        return {"type": TASK_TIMEOUT, "message": f"the task runner timed out: {message}".strip()}
    if condition == "EventAgeExceeded":
        return {"type": RUNNER_ERROR, "message": "the task runner did not start the task in time (EventAgeExceeded)"}
    detail = ": ".join(p for p in (kind, message) if p) or "no detail"
    return {"type": RUNNER_ERROR, "message": f"the task runner failed: {detail}"}


def destination_record(payload: dict[str, Any], function_arn: str, request_id: str, at: datetime,
                       response: Any = None, error: dict[str, str] | None = None) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's destination (its documented shape), for
    the emulations: ``response`` is the function's return value, or ``error`` its failure
    (``{"errorType", "errorMessage"}``)."""
    failed = error is not None
    context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if failed:
        context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "requestContext": {"requestId": request_id, "functionArn": f"{function_arn}:$LATEST",
                           "condition": "RetriesExhausted" if failed else "Success", "approximateInvokeCount": 1},
        "requestPayload": payload,
        "responseContext": context,
        "responsePayload": error if failed else response,
    }
