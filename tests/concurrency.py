"""Concurrency on the embedded stack as on AWS: many Lambdas at once, each AWS request atomic.

- ``linearizable_moto()`` (loopline/embedded/concurrency.py, shared with the local runtime): every AWS
  request moto serves is one atomic step, as DynamoDB's are, and nothing more.
- ``Lambdas``: handler invocations in the calling thread, without ``LocalRuntime``'s locks; every
  thread is its own Lambda container (its own copy of the handler module: Powertools' batch
  processor and the API resolver are module globals that serve one invocation at a time).
- ``PausePoint`` + ``interleave``: stop one invocation right after its k-th AWS call, run another
  to its end, then let the first go on. Called for every k, each such interleaving is tried once.
- ``together``: invocations in threads released at the same moment.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
import time
import traceback
import uuid
from typing import Any, Callable

from loopline.embedded.concurrency import linearizable_moto
from loopline.embedded.runtime import REGION, LambdaContext, LocalRuntime, _sqs_record

__all__ = ["Lambdas", "Outcome", "PausePoint", "interleave", "linearizable_moto", "together"]
TIMEOUT = 30.0  # no wait in a test is unbounded: a deadlock fails the test instead of hanging it
_container_ids = itertools.count(1)


def _private_module(dotted: str):
    """A fresh copy of a handler module, under a name of its own (sys.modules is not touched)."""
    origin = importlib.util.find_spec(dotted).origin
    spec = importlib.util.spec_from_file_location(f"{dotted}_container{next(_container_ids)}", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Lambdas:
    """The functions of a ``LocalRuntime``'s stack, invoked concurrently from any number of threads."""

    def __init__(self, runtime: LocalRuntime):
        self.runtime = runtime
        self.sqs = runtime.aws.client("sqs")  # the poller's own client (AWS's side): not a handler call
        self.queue_url = runtime.stack.physical["ReadyQueue"]
        self.queue_arn = runtime._queue_arn(self.queue_url)
        # The task runner's results: the worker's second event source.
        self.result_queue_url = runtime.stack.physical["TaskResultQueue"]
        self._arns = {self.queue_url: self.queue_arn,
                      self.result_queue_url: runtime._queue_arn(self.result_queue_url)}
        self.errors: list[str] = []  # worker records that failed for any reason but Busy
        self._local = threading.local()

    # ------------------------------------------------------------ containers

    def _container(self, function_id: str):
        containers = self._local.__dict__.setdefault("containers", {})
        if function_id not in containers:
            module_name, _, func_name = self.runtime.stack.functions[function_id].handler.rpartition(".")
            module = _private_module(module_name)
            if hasattr(module, "record_handler"):
                module.record_handler = self._watched(module.record_handler)  # looked up at call time
            # Powertools keeps one metrics buffer per process (a class attribute), which threads would
            # share; a container has its own, emptied after each invocation (metrics are not under test).
            buffer: dict = {}
            module.metrics.metric_set = module.metrics.provider.metric_set = buffer
            containers[function_id] = getattr(module, func_name), buffer
        return containers[function_id]

    def _watched(self, record_handler: Callable) -> Callable:
        def watched(record):
            try:
                return record_handler(record)
            except Exception as error:
                # Busy (another delivery holds the task's lease) is the protocol: the message comes back.
                if type(error).__name__ != "Busy":
                    self.errors.append(f"{record.body}\n{traceback.format_exc()}")
                raise
        return watched

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        spec = self.runtime.stack.functions[function_id]
        context = LambdaContext(function_name=function_id, aws_request_id=str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{function_id}",
                                timeout_ms=spec.timeout * 1000)
        handler, metrics = self._container(function_id)
        try:
            return handler(event, context)
        finally:
            metrics.clear()

    # ------------------------------------------------------------ the worker and its queue

    def receive(self, limit: int = 1) -> list[dict[str, Any]]:
        """Up to ``limit`` messages of one of the worker's queues: the task runner's results first, else
        the ready queue's. Each message remembers its queue (``"_queue"``)."""
        for url in (self.result_queue_url, self.queue_url):
            reply = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=limit, AttributeNames=["All"],
                                             WaitTimeSeconds=0)
            messages = reply.get("Messages", [])
            if messages:
                return [{**m, "_queue": url} for m in messages]
        return []

    def deliver(self, *messages: dict[str, Any]) -> set[str]:
        """One worker invocation with ``messages`` (of one queue) as its batch, then what Lambda's poller
        does: the records not reported failed are deleted; the failed ones are made visible again at once
        (not after the visibility timeout: only to keep the tests fast). Returns the failed ids."""
        queue = messages[0].get("_queue", self.queue_url)
        event = {"Records": [_sqs_record(m, self._arns[queue]) for m in messages]}
        try:
            response = self.invoke("WorkerFunction", event) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # a function error (Powertools raises when every record failed): all come back
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            try:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(QueueUrl=queue, VisibilityTimeout=0,
                                                       ReceiptHandle=message["ReceiptHandle"])
                else:
                    self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            except self.sqs.exceptions.ReceiptHandleIsInvalid:
                pass  # another delivery of this same message deleted it already
        return failed

    def poll(self, limit: int = 1) -> int:
        """Receive up to ``limit`` messages and deliver them as one batch; returns how many came."""
        messages = self.receive(limit)
        if messages:
            self.deliver(*messages)
        return len(messages)

    # ------------------------------------------------------------ the api

    def api(self, event: dict[str, Any]) -> tuple[int, Any]:
        """(status, body) of one API request; an exception out of the handler is API Gateway's 500."""
        try:
            response = self.invoke("ApiFunction", event)
        except Exception:
            return 500, traceback.format_exc()
        body = response.get("body") or ""
        try:
            return response["statusCode"], json.loads(body)
        except ValueError:
            return response["statusCode"], body


# ---------------------------------------------------------------- deterministic interleavings


class PausePoint:
    """Counts the AWS calls one chosen thread makes and stops it right after call number ``at``.

    Register it on boto3's default session before the handlers' clients are built (a client
    copies its session's event handlers when it is created)."""

    def __init__(self, events):
        self.thread: int | None = None
        self.at: int | None = None
        self.calls = 0
        self.paused = threading.Event()
        self.go_on = threading.Event()
        events.register("after-call", self._after)

    def arm(self, at: int | None) -> None:
        self.thread, self.at, self.calls = None, at, 0
        self.paused.clear()
        self.go_on.clear()

    def _after(self, **_):
        if threading.get_ident() != self.thread:
            return
        self.calls += 1
        if self.calls == self.at:
            self.paused.set()
            if not self.go_on.wait(TIMEOUT):
                raise RuntimeError(f"paused after call {self.at} and never resumed")


class Outcome:
    """What a callable returned, or the exception it raised."""

    def __init__(self, call: Callable[[], Any]):
        self.value: Any = None
        self.error: BaseException | None = None
        try:
            self.value = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test, which asserts on it
            self.error = error

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def interleave(point: PausePoint, first: Callable[[], Any], second: Callable[[], Any],
               at: int | None) -> tuple[Outcome, Outcome, bool]:
    """Run ``first`` in a thread until right after its ``at``-th AWS call (0: before any, so
    ``second`` runs wholly first; None: never, so ``first`` runs wholly first), then ``second``
    to its end in this thread, then the rest of ``first``. Returns both outcomes, and whether
    ``first`` really stopped at ``at`` (it may make fewer calls than it did alone)."""
    if at == 0:
        second_outcome = Outcome(second)
        return Outcome(first), second_outcome, True
    point.arm(at)
    done = threading.Event()
    box: list[Outcome] = []

    def run_first():
        point.thread = threading.get_ident()
        try:
            box.append(Outcome(first))
        finally:
            done.set()

    thread = threading.Thread(target=run_first, name="first", daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not (point.paused.is_set() or done.is_set()):
        if time.monotonic() > deadline:
            raise TimeoutError("the first invocation neither paused nor finished")
        done.wait(0.001)
    stopped = point.paused.is_set()
    second_outcome = Outcome(second)
    point.go_on.set()
    thread.join(TIMEOUT)
    if thread.is_alive():
        raise TimeoutError("the first invocation did not finish after it was resumed")
    point.thread = None  # stop counting; ``point.calls`` keeps what the first one made
    return box[0], second_outcome, stopped


# ---------------------------------------------------------------- threads at once


def together(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run ``calls`` in threads released at the same moment; their outcomes, in order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        def released():
            barrier.wait(TIMEOUT)
            return call()
        outcomes[i] = Outcome(released)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        if thread.is_alive():
            raise TimeoutError("a concurrent invocation did not finish")
    return outcomes  # type: ignore[return-value]
