"""The embedded default: moto in-process, resources from template.yaml, and what moto cannot do.

moto holds the state (tables, queues, schedules); ``LocalRuntime`` does what
AWS would do around it with the same handler code: it delivers SQS batches to
the worker in the Lambda event shape (honouring partial batch failures), fires
due schedules (then deletes them), and routes HTTP to the api handler in the
API Gateway proxy shape. ``EmbeddedAws`` (account.py, the "cloud") outlives a
``LocalRuntime`` (the "Lambda side"), so a test can kill and restart the latter.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from infra import wiring
from infra.clock import ManualClock, SystemClock
from infra.json_http import dumps
from infra.ports import Clock
from loopline.dev_routes import DEV_FUNCTIONS, dev_answer, dev_routes
from loopline.doorbell import Doorbell
from loopline.memory.prometheus import PrometheusRegistry

from .account import LOCAL_ENV, REGION, TEMPLATE, EmbeddedAws, _start_s3_server, endpoint_from_env  # noqa: F401
from .async_lambda import AsyncLambda
from .concurrency import InvocationGate, routed_stdout
from .iam import Enforcer, Policy
from .moto_streams import MotoShardReader
from .pump_sleep import PumpSleep
from .streams import IDLE_POLL, STREAMS_CONFIG, StreamPoller
from .unsigned import unsigned_client

_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    timeout_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


class LocalRuntime:
    """``inline_code``: the task runner runs in the thread that invokes it, before the invoke returns
    (deterministic harnesses); otherwise beside the worker on a pool of ``runner_concurrency``
    threads, as on AWS, so the server keeps answering while code runs.

    The pumps sleep while there is nothing to do, on ``doorbell`` (loopline/doorbell.py): a send, a
    new schedule, an answered request or a due time wakes them; ``idle_limit`` bounds a sleep."""

    def __init__(self, aws: EmbeddedAws, clock: Clock | None = None, log: Callable[[str], None] | None = None,
                 inline_code: bool = False, runner_concurrency: int = 4, idle_limit: float = 5.0):
        self.aws = aws
        self.stack = aws.stack
        self.clock = clock or SystemClock()
        self.log = log or (lambda text: None)
        # Invocations of different functions run at once (the API answers while the worker runs a
        # task); one function serves one invocation at a time, as one warm Lambda container does
        # (Powertools' resolver and batch processor are module globals). moto is made linearizable
        # (EmbeddedAws); an emulator in another process may not be, so then all share one lock.
        # ``with runtime.lock:`` holds every invocation off (tests and tools driving the engine).
        self.lock = InvocationGate()
        shared = threading.Lock() if aws.endpoint_url is not None else None
        self._function_locks = {name: shared or threading.Lock() for name in self.stack.functions}
        self._containers: dict[str, Callable[..., Any]] = {}
        # Each function may call only what its role in template.yaml allows, as on AWS.
        self.permissions = Enforcer({name: Policy(spec.policy) for name, spec in self.stack.functions.items()},
                                    self.stack.account)
        self.doorbell = Doorbell(idle_limit)
        # The Lambda service's sends (task runner records, from pool threads) wake the pumps too.
        self._sqs = self.doorbell.attach(aws.client("sqs"))
        # The record's send is one SQS request (moto is linearizable): no lock around it.
        self.lambda_service = AsyncLambda(
            self.stack, lambda function, event: self.call_handler(function, event, exclusive=False),
            lambda url, body: self._sqs.send_message(QueueUrl=url, MessageBody=body), contextlib.nullcontext(),
            self.clock, inline=inline_code, concurrency=runner_concurrency, log=self.log)
        self._scheduler = aws.client("scheduler")
        # The runs table's stream into HistoryFunction, as Lambda's event source mapping delivers it.
        # What HistoryFunction emits as EMF on AWS, kept here for the dev server's GET /metrics.
        # Its gauges are read at each scrape by calling GaugesFunction, held to its role, as its schedule would.
        self.metrics = PrometheusRegistry(read_gauges=lambda: self.call_handler("GaugesFunction", {}))
        streams = aws.client("dynamodbstreams", config=STREAMS_CONFIG)
        # On moto, the records are read off its backend, as Lambda's service reads its streams (moto_streams.py).
        self.streams = StreamPoller(streams, self._sqs, self.stack.stream_sources, aws.stream_checkpoints,
                                    self.invoke, self.log,
                                    reader=MotoShardReader(streams) if aws.endpoint_url is None else None)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._queue_urls: dict[str, str] = {}
        self._schedules: dict[tuple[str, str], dict[str, Any]] = {}  # (name, modified) -> GetSchedule
        self.sleeper = PumpSleep(self.doorbell, self._sqs, tuple(s.queue_url for s in self.stack.queue_sources))
        self.gateway = None
        env: dict[str, str] = {}
        for spec in self.stack.functions.values():
            env.update(spec.environment)
        # The template asks for the real providers (SES, SNS, Bedrock); locally the stand-ins
        # record what they were asked instead, unless LOOPLINE_PROVIDERS picks others.
        env["LOOPLINE_PROVIDER_DEFAULTS"] = "local"
        # The dev server's contract shows live links in GET /runs/{id}; on AWS only GET /runs/{id}/links.
        env["LOOPLINE_LINKS_IN_VIEWS"] = "true"
        # No Cognito here: the console's sign-in routes send the browser straight to the console.
        env["LOOPLINE_CONSOLE_SIGN_IN"] = "none"
        # The task runner's URLs must work from where it runs: the S3 server beside moto.
        env["LOOPLINE_PRESIGN_ENDPOINT"] = aws.endpoint_url or aws.s3_endpoint or ""
        os.environ.update(env)
        self._wire()

    def restart_functions(self) -> None:
        """Every function starts cold with the process environment as it now is, as a Lambda function
        does after its configuration is updated: the engine and its settings are built again."""
        self._wire()

    def _wire(self) -> None:
        """The engine the handlers build uses this runtime's clock and Lambda service."""
        wiring.reset()
        # A movable clock cannot speed up SQS delays (they follow real time), so
        # every timer then goes through the schedules this runtime fires by its clock.
        wiring.use_clock(self.clock, sqs_max_delay=0 if isinstance(self.clock, ManualClock) else 900)
        wiring.use_lambda_service(self.lambda_service.before_send)
        wiring.use_call_check(self.permissions.before_call)
        wiring.use_client_hook(self._client_hook)
        wiring.use_metrics(self.metrics)

    def _client_hook(self, client: Any) -> Any:
        """Each client the engine makes: its calls ring the doorbell, and to moto in-process they go
        unsigned (unsigned.py)."""
        self.doorbell.attach(client)
        return unsigned_client(client) if self.aws.endpoint_url is None else client

    # ------------------------------------------------------------ invoking handlers

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        if function_id in DEV_FUNCTIONS:
            return dev_answer(function_id, event, self.clock, self.doorbell, self.metrics)
        return self.call_handler(function_id, event)

    def call_handler(self, function_id: str, event: dict[str, Any], exclusive: bool = True) -> Any:
        """Call a function's handler (its FunctionSpec's) with a Lambda context, in this thread.
        ``exclusive``: one invocation of the function at a time (a warm container); the task runner
        is invoked concurrently (``exclusive=False``), as Lambda scales an asynchronously invoked function."""
        spec = self.stack.functions[function_id]
        context = LambdaContext(function_name=function_id, aws_request_id=str(uuid.uuid4()),
                                invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{function_id}",
                                timeout_ms=spec.timeout * 1000)
        # A Lambda's stdout (Powertools' EMF metric lines) goes to its log stream, not to ours.
        lock = self._function_locks[function_id] if exclusive else contextlib.nullcontext()
        with self.lock.shared(), lock, self.permissions.calling(function_id), lambda_stdout() as sink, \
                routed_stdout(sink):
            return self._handler(function_id)(event, context)

    def _handler(self, function_id: str) -> Callable[..., Any]:
        if function_id not in self._containers:
            module_name, _, func_name = self.stack.functions[function_id].handler.rpartition(".")
            module = importlib.import_module(module_name)
            metrics = getattr(module, "metrics", None)
            if metrics is not None and hasattr(metrics, "provider"):
                # Powertools keeps one metrics buffer per process (a class attribute): functions
                # running at once would flush each other's. Each gets its own, as on AWS.
                metrics.metric_set = metrics.provider.metric_set = {}
            self._containers[function_id] = getattr(module, func_name)
        return self._containers[function_id]

    # ------------------------------------------------------------ the SQS poller

    def poll_once(self) -> int:
        """Deliver one batch per queue source to its function; returns messages handled."""
        handled = 0
        for source in self.stack.queue_sources:
            reply = self._sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=source.batch_size,
                                              AttributeNames=["All"], WaitTimeSeconds=0)
            messages = reply.get("Messages", [])
            if not messages:
                continue
            arn = self._queue_arn(source.queue_url)
            event = {"Records": [_sqs_record(m, arn) for m in messages]}
            started = time.monotonic()
            try:
                response = self.invoke(source.function, event) or {}
            except Exception:  # a function error returns the whole batch to the queue, as Lambda does
                self.log("worker error:\n" + traceback.format_exc())
                self.sleeper.comes_back(source.queue_url)
                continue
            timeout = self.stack.functions[source.function].timeout
            if time.monotonic() - started > timeout:  # Lambda would have stopped it: nothing counts as done
                self.log(f"{source.function} ran longer than its {timeout} s timeout: its batch returns")
                self.sleeper.comes_back(source.queue_url)
                continue
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} \
                if source.report_batch_item_failures else set()
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self._sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
            handled += len(done)
            if len(done) < len(messages):
                self.sleeper.comes_back(source.queue_url)
        return handled

    # ------------------------------------------------------------ the timer pump

    def fire_due_timers(self) -> int:
        """Send the input of every due one-time schedule to its target queue, then delete it."""
        fired = 0
        group = self.stack.physical["TimerGroup"]
        now = self.clock.now()
        # A movable clock moves only when told (``_move_clock`` rings); the real one, by itself: the
        # pump wakes when the earliest schedule falls due (worked out again on every pass).
        real_time = not isinstance(self.clock, ManualClock)
        earliest: datetime | None = None
        token = None
        while True:
            kwargs = {"GroupName": group, **({"NextToken": token} if token else {})}
            page = self._scheduler.list_schedules(**kwargs)
            for summary in page.get("Schedules", []):
                # A schedule never changes once made (a name made again is a new schedule, with its own
                # creation date): read each once, not on every pump (every code task leaves a watchdog
                # pending when timers go through schedules).
                key = (summary["Name"], str(summary.get("LastModificationDate") or summary.get("CreationDate")))
                schedule = self._schedules.get(key)
                if schedule is None:
                    schedule = self._schedules[key] = self._scheduler.get_schedule(Name=summary["Name"],
                                                                                  GroupName=group)
                match = _AT.match(schedule["ScheduleExpression"])
                if not match:
                    continue
                due = datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)
                if due > now:
                    earliest = due if earliest is None else min(earliest, due)
                    continue
                self._schedules.pop(key, None)
                target = schedule["Target"]
                self._sqs.send_message(QueueUrl=self._queue_url(target["Arn"]), MessageBody=target.get("Input", "{}"))
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    self._scheduler.delete_schedule(Name=summary["Name"], GroupName=group)
                fired += 1
            token = page.get("NextToken")
            if not token:
                self.sleeper.next_schedule((earliest - now).total_seconds() if real_time and earliest else None)
                return fired

    def _queue_arn(self, url: str) -> str:
        return self.sleeper.attribute(url, "QueueArn")

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            self._queue_urls[arn] = self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
        return self._queue_urls[arn]

    # ------------------------------------------------------------ driving

    def pump_once(self) -> int:
        moved = self.fire_due_timers() + self.poll_once() + self.streams.poll_when_due()
        if self.streams.retrying:  # nothing else would wake a sleeping pump for the retry
            self.doorbell.ring_in(IDLE_POLL, slot="stream-retry")
        return moved

    def run_until(self, done: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Pump in this thread until ``done()`` or ``timeout`` seconds of real time. ``done()`` is asked
        after each pass and after each wake of the doorbell; one that wants to be asked again at a
        time when nothing else may happen says so with ``doorbell.ring_in``."""
        deadline = time.monotonic() + timeout
        while True:
            self.doorbell.arm()  # before done(): what rings while it looks ends the sleep below
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return done()
            if self.pump_once() == 0:
                self.idle(left)

    def idle(self, longest: float | None = None) -> None:
        """After a pass that found nothing: sleep until the doorbell rings (or ``longest`` seconds)."""
        self.sleeper.sleep(longest)

    def start_gateway(self, port: int = 0, allow_hosts: tuple[str, ...] = ()) -> None:
        """Serve the template's API routes (and the dev clock route) on 127.0.0.1:``port``; requests
        naming another host than 127.0.0.1, localhost or one of ``allow_hosts`` are refused."""
        from .gateway import LocalGateway

        routes = (*self.stack.routes, *dev_routes())
        self.gateway = LocalGateway(routes, self._answer, port=port, allow_hosts=allow_hosts)
        self.gateway.start()
        # Links in runs must point at this server; the engine is rebuilt with it.
        os.environ["LOOPLINE_PUBLIC_URL"] = self.gateway.url
        self._wire()

    def _answer(self, function_id: str, event: dict[str, Any]) -> Any:
        """A request through the gateway; answered, it wakes the pumps (it may have changed a run)."""
        try:
            return self.invoke(function_id, event)
        finally:
            self.doorbell.ring()

    def start(self, http_port: int | None = None, allow_hosts: tuple[str, ...] = ()) -> "LocalRuntime":
        """Pumps in a background thread; with ``http_port`` (0 = any free port) also the HTTP gateway."""
        if http_port is not None:
            self.start_gateway(http_port, allow_hosts)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="loopline-pumps", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.doorbell.arm()
            try:
                if self.pump_once() == 0:
                    self.idle()
            except Exception:
                self.log("pump error:\n" + traceback.format_exc())
                self._stopping.wait(0.5)

    def stop(self) -> None:
        self.lambda_service.close()
        self._stopping.set()
        self.doorbell.ring()  # the pump thread, asleep, sees it is stopping
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        wiring.reset()


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def lambda_stdout():
    """Where handlers' stdout goes locally: LOOPLINE_LAMBDA_LOG (a file) if set, else nowhere."""
    path = os.environ.get("LOOPLINE_LAMBDA_LOG")
    return open(path, "a", encoding="utf-8") if path else io.StringIO()


def _reply(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"},
            "body": dumps(body)}


def stderr_log(text: str) -> None:
    print(text, file=sys.stderr)
