"""What the Lambda service does for asynchronous invocations, beside moto (which cannot run Lambda code).

The engine's Lambda client gets :meth:`AsyncLambda.before_send` as a botocore handler
(``wiring.use_lambda_service``). An ``Invoke`` with ``InvocationType=Event`` of a function that has
an EventInvokeConfig in the stack is answered 202, as Lambda answers; then the function's handler
(its FunctionSpec: the same code as on AWS) runs on a bounded pool of threads, as Lambda runs
invocations beside the caller with limited concurrency, and its destination record, in AWS's
shape, is sent to the queue its EventInvokeConfig names (OnSuccess or OnFailure). ``inline`` runs
the handler at once in the caller's thread instead, so a harness stays deterministic: the record
is on its queue before the invoke returns.

Sending the record is the Lambda service's work, done with the runtime's own client (not the
engine's): it is not a call of the worker's, and no harness crashes or pauses it.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import traceback
import uuid
from contextlib import AbstractContextManager
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse

from infra.dispatch.jobs import destination_record
from infra.ports import Clock

from .provision import AsyncDestinations, Stack

_INVOKE = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_ANSWERED = "https://lambda-emulated.invalid/"  # moto's stubber, after this handler, must not serve it too


class AsyncLambda:
    def __init__(self, stack: Stack, run: Callable[[str, Any], Any], send: Callable[[str, str], None],
                 send_lock: AbstractContextManager, clock: Clock, inline: bool = False, concurrency: int = 4,
                 log: Callable[[str], None] | None = None):
        """``run(function_id, event)`` calls a function's handler; ``send(queue_url, body)`` sends a record
        (under ``send_lock``: moto serves one request at a time)."""
        self._stack = stack
        self._run_handler = run
        self.send = send  # public: a benchmark tags these calls as the Lambda service's
        self._send_lock = send_lock
        self._clock = clock
        self.inline = inline
        self._log = log or (lambda text: None)
        # Lambda's concurrency: at most this many invocations run at once; the others wait their turn.
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._closed = False
        self.invoked = 0  # asynchronous invocations accepted (for tests and benchmarks)
        self.in_flight = 0  # accepted and not yet over (its record sent, or lost): a test moving the clock waits

    # ------------------------------------------------------------ the Invoke API

    def before_send(self, request, **_) -> AWSResponse | None:
        match = _INVOKE.fullmatch(urlsplit(request.url).path)
        if match is None:
            return None  # not an Invoke (or already answered by a handler before this one)
        name = unquote(match.group(1)).rsplit(":function:", 1)[-1].split(":", 1)[0]
        target = self._stack.async_invokes.get(name)
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if target is None:
            answer = _error(404, "ResourceNotFoundException", f"Function not found: {name} (no EventInvokeConfig)")
        elif headers.get("x-amz-invocation-type", "RequestResponse") != "Event":
            answer = _error(400, "InvalidParameterValueException", "only asynchronous (Event) invocations here")
        elif len(body) > 1024 * 1024:
            answer = _error(413, "RequestTooLargeException", "an asynchronous payload is limited to 1 MB")
        else:
            try:
                event = json.loads(body or b"{}")
            except ValueError:
                answer = _error(400, "InvalidRequestContentException", "Could not parse request body into json")
            else:
                request_id = str(uuid.uuid4())
                self._accept(target, event, request_id)
                answer = AWSResponse(request.url, 202, {"x-amzn-RequestId": request_id}, _Raw(b""))
        request.url = _ANSWERED
        return answer

    def _accept(self, target: AsyncDestinations, event: Any, request_id: str) -> None:
        with self._lock:
            self.invoked += 1
            if self._closed:
                return  # the Lambda side is gone: as if the event were lost with it
            self.in_flight += 1
        if self.inline:
            self._invoke(target, event, request_id)
            return
        # A daemon thread per invocation: a process that exits does not wait for running code (on
        # AWS it would go on elsewhere; here it ends with the process, and the watchdog covers it).
        threading.Thread(target=self._queued, args=(target, event, request_id), daemon=True,
                         name=f"lambda-async-{request_id[:8]}").start()

    def _queued(self, target: AsyncDestinations, event: Any, request_id: str) -> None:
        with self._slots:
            if not self._closed:
                self._invoke(target, event, request_id)
                return
        self._over()

    def _over(self) -> None:
        with self._lock:
            self.in_flight -= 1

    # ------------------------------------------------------------ running it, then its record

    def _invoke(self, target: AsyncDestinations, event: Any, request_id: str) -> None:
        try:
            self._run_and_record(target, event, request_id)
        finally:
            self._over()

    def _run_and_record(self, target: AsyncDestinations, event: Any, request_id: str) -> None:
        timeout = self._stack.functions[target.function].timeout
        started = time.monotonic()
        response, error = None, None
        try:
            response = self._run_handler(target.function, event)
            json.dumps(response)  # Lambda serialises the return value; one it cannot is a failure
        except Exception as exc:  # the function failed: its record says so (BaseException: the process died)
            response, error = None, {"errorType": type(exc).__name__, "errorMessage": str(exc)[:4096]}
        if time.monotonic() - started > timeout:  # Lambda would have stopped it
            response, error = None, {"errorType": "Sandbox.Timedout",
                                     "errorMessage": f"Task timed out after {timeout:.2f} seconds"}
        queue_url = target.on_failure if error else target.on_success
        if queue_url is None:
            return
        record = destination_record(event, target.function_arn, request_id, self._clock.now(), response, error)
        try:
            with self._send_lock:
                self.send(queue_url, json.dumps(record, separators=(",", ":")))
        except Exception:  # noqa: BLE001 - on a pool thread: nobody to raise to; the watchdog covers a lost record
            if self.inline:
                raise
            self._log("task runner record not sent:\n" + traceback.format_exc())

    def close(self) -> None:
        """The Lambda side stops: invocations not started are lost, running ones finish."""
        with self._lock:
            self._closed = True


class _Raw(io.BytesIO):
    def stream(self, **_):  # what AWSResponse.content reads
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def _error(status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return AWSResponse(_ANSWERED, status, {"x-amzn-errortype": code, "Content-Type": "application/json",
                                           "x-amzn-RequestId": str(uuid.uuid4())}, _Raw(body))
