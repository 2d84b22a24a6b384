"""What the task-runner function does with one job: fetch the request if it came by URL, run the
code, answer (putting a large reply at the job's URL).

The runner holds no credential of the engine's: a large request and reply move through the payload
bucket by presigned URLs the worker made for exactly one object each (a GET for the request, a
PUT for the reply), expiring with the attempt's lease. The token stays here: the code runs in a
child process that is given the request alone (infra/sandbox).
"""

from __future__ import annotations

import urllib.request
from typing import Any

from ..sandbox.launch import run_code
from ..sandbox.request import CodeRequest
from ..sandbox.settings import SandboxSettings
from .jobs import INLINE_LIMIT, CodeJob, RunnerAnswer

MAX_REQUEST = 64 * 1024 * 1024
_TIMEOUT = 60.0  # seconds for one transfer to or from the payload bucket


def run_job(event: Any, settings: SandboxSettings) -> dict[str, Any]:
    """Run one job with the runner's ``settings``; return the answer Lambda puts in the destination
    record. An invalid job or a failed transfer raises: the invocation fails and its record says so
    (the task fails: TaskRunnerError)."""
    job = CodeJob.from_payload(event)
    request = job.request
    if request is None:
        request = CodeRequest.from_json(fetch(job.request_url or "", MAX_REQUEST))
    reply = run_code(request, settings)
    text = reply.to_json().encode()
    if len(text) <= INLINE_LIMIT or not job.reply_url:
        return RunnerAnswer(reply=reply).to_dict()
    put(job.reply_url, text)
    return RunnerAnswer(uploaded=True).to_dict()


def fetch(url: str, limit: int) -> bytes:
    with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:  # noqa: S310 - a presigned http(s) URL
        data = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the request is larger than {limit} bytes")
    return data


def put(url: str, data: bytes) -> None:
    # The content type is part of what the URL signs (infra/aws/task_dispatch.py).
    request = urllib.request.Request(url, data=data, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310 - a presigned http(s) URL
        response.read()
