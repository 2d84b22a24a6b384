"""Transient AWS faults (issue #5 item 3): throttling and 5xx answers injected into botocore.

``FaultInjector`` hooks ``before-send`` on a botocore event emitter (a session's, before
its clients are made: a client copies its session's handlers when it is created) and,
for the requests its plan picks, answers with an error shaped in the service's wire
protocol, so botocore parses it and its retry mode classifies it as a real one.

A faulted request must not reach moto. botocore *emits* ``before-send`` to every handler
and only then takes the first response (``first_non_none_response``): a hook that merely
returns a response first still lets moto's stubber (also a ``before-send`` handler, from
botocore's BUILTIN_HANDLERS) apply the write. So the hook runs first (``register_first``)
and points the request at an address no stub or emulator serves: the handlers after it
see nothing they own. The same holds for a real endpoint, as botocore sends nothing when
a handler answered.

``fast_backoff`` records the delays botocore's retry mode asks for instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO

from botocore.awsrequest import AWSResponse

UNROUTABLE = "https://fault-injected.invalid/"  # no moto URL pattern matches it; .invalid never resolves
_ATTEMPT = re.compile(r"attempt=(\d+)")


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    query_code: str | None = None  # SQS (awsQueryCompatible) also names its legacy query error in a header

    @property
    def throttling(self) -> bool:
        return self.status < 500


# What each service answers when it is throttled or broken, in the rotation the injector uses.
# The codes are the ones the services document (and botocore's standard mode retries):
# throttling as 400 (Scheduler models its ThrottlingException as 429), then 500 and 503.
FAULTS: dict[str, tuple[Fault, ...]] = {
    "dynamodb": (Fault(400, "ProvisionedThroughputExceededException"), Fault(500, "InternalServerError"),
                 Fault(400, "ThrottlingException"), Fault(503, "ServiceUnavailable")),
    "sqs": (Fault(400, "RequestThrottled", "RequestThrottled;Sender"), Fault(500, "InternalError"),
            Fault(400, "ThrottlingException"), Fault(503, "ServiceUnavailable")),
    "scheduler": (Fault(429, "ThrottlingException"), Fault(500, "InternalServerException"),
                  Fault(503, "ServiceUnavailable")),
    "secrets-manager": (Fault(400, "ThrottlingException"), Fault(500, "InternalServiceError"),
                        Fault(503, "ServiceUnavailable")),
    "s3": (Fault(503, "SlowDown"), Fault(500, "InternalError"), Fault(503, "ServiceUnavailable")),
}
_OTHER = (Fault(400, "ThrottlingException"), Fault(503, "ServiceUnavailable"))

# (service, operation, nth request of that service) -> fault it? True takes the service's next
# fault in rotation; a Fault is answered as given.
Plan = Callable[[str, str, int], "bool | Fault"]


class Every:
    """The 1st, (n+1)th, (2n+1)th... request of each service from now on (the first, so a service
    used once per process, like Secrets Manager for the link key, is faulted too). A retry is
    the next request of its service, so with n >= 2 every fault is followed by a success."""

    def __init__(self, n: int, services: set[str] | None = None):
        self.n, self.services, self.seen = n, services, Counter()

    def __call__(self, service: str, _operation: str, _count: int) -> bool:
        if self.services is not None and service not in self.services:
            return False
        self.seen[service] += 1
        return self.seen[service] % self.n == 1 % self.n


class Burst:
    """The next ``length`` requests of ``service`` (of ``operation`` only, if given), after ``skip`` of them."""

    def __init__(self, service: str, length: int, operation: str | None = None, skip: int = 0):
        self.service, self.operation, self.remaining, self.skip = service, operation, length, skip

    def __call__(self, service: str, operation: str, _count: int) -> bool:
        if service != self.service or (self.operation and operation != self.operation) or self.remaining <= 0:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        self.remaining -= 1
        return True


def never(_service: str, _op: str, _count: int) -> bool:
    return False


class FaultInjector:
    def __init__(self, plan: Plan = never):
        self.plan = plan
        self.requests: Counter[str] = Counter()  # every attempt seen, faulted or not
        self.faults: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()  # attempts after the first (botocore's amz-sdk-request header)
        self.by_code: Counter[tuple[str, str]] = Counter()
        self.log: list[tuple[str, str, int, str]] = []  # (service, operation, attempt, code) per fault
        self._lock = threading.Lock()
        self._quiet = 0
        self._protocols: dict[str, str] = {}

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """The test's own look at the state (describe_run...) is neither faulted nor counted."""
        with self._lock:
            self._quiet += 1
        try:
            yield
        finally:
            with self._lock:
                self._quiet -= 1

    def attach(self, events) -> FaultInjector:
        """Hook a botocore emitter: a session's (``boto3.Session().events``) or one client's ``meta.events``."""
        events.register("before-call", self._note_protocol, unique_id=f"fault-protocol-{id(self)}")
        events.register_first("before-send", self._before_send, unique_id=f"fault-injector-{id(self)}")
        return self

    def detach(self, events) -> None:
        events.unregister("before-call", self._note_protocol, unique_id=f"fault-protocol-{id(self)}")
        events.unregister("before-send", self._before_send, unique_id=f"fault-injector-{id(self)}")

    def _note_protocol(self, model, event_name: str, **_):
        # before-send carries only the request; the call before it knows the service's protocol.
        service_model = model.service_model
        self._protocols[event_name.split(".")[1]] = service_model.resolved_protocol or service_model.protocol

    def _before_send(self, request, event_name: str, **_):
        _, service, operation = event_name.split(".", 2)
        found = _ATTEMPT.search(_header(request, "amz-sdk-request"))
        attempt = int(found.group(1)) if found else 1
        with self._lock:
            if self._quiet:
                return None
            self.requests[service] += 1
            if attempt > 1:
                self.retries[service] += 1
            chosen = self.plan(service, operation, self.requests[service])
            if not chosen:
                return None
            kinds = FAULTS.get(service, _OTHER)
            fault = chosen if isinstance(chosen, Fault) else kinds[self.faults[service] % len(kinds)]
            self.faults[service] += 1
            self.by_code[(service, fault.code)] += 1
            self.log.append((service, operation, attempt, fault.code))
        answer = error_response(request, fault, self._protocols.get(service, ""))
        request.url = UNROUTABLE  # the handlers after this one (moto's stubber) must not serve it
        return answer

    def summary(self) -> dict:
        return {"requests": dict(self.requests), "faults": dict(self.faults), "retries": dict(self.retries)}


class _Body(BytesIO):
    def stream(self, **_) -> Iterator[bytes]:  # what AWSResponse.content reads
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def error_response(request, fault: Fault, protocol: str) -> AWSResponse:
    """``fault`` in the service's wire protocol (the one botocore resolved for the client), so
    botocore's parser finds its code: JSON (DynamoDB, SQS, Secrets Manager), REST-JSON
    (Scheduler), REST-XML (S3), query (SQS in old botocore versions)."""
    message = f"injected {fault.code}"
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "json":
        headers["Content-Type"] = _header(request, "Content-Type") or "application/x-amz-json-1.0"
        if fault.query_code:
            headers["x-amzn-query-error"] = fault.query_code
        body = json.dumps({"__type": f"com.amazonaws.injected#{fault.code}", "message": message})
    elif protocol == "rest-json":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": fault.code})
        body = json.dumps({"message": message})
    elif protocol == "rest-xml":
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": request_id})
        body = (f"<Error><Code>{fault.code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>")
    elif protocol in ("query", "ec2"):
        headers["Content-Type"] = "text/xml"
        side = "Sender" if fault.throttling else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{side}</Type><Code>{fault.code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    else:  # a protocol not shaped here: botocore takes the status as the code, and retries 5xx
        body = ""
    return AWSResponse(request.url, fault.status, headers, _Body(body.encode()))


def _header(request, name: str) -> str:
    value = request.headers.get(name) or ""
    return value.decode() if isinstance(value, bytes) else value  # botocore keeps some headers as bytes


class _NoSleepTime:
    """Stands in for the ``time`` module inside botocore.endpoint, whose only use is the retry sleep."""

    def __init__(self, delays: list[float]):
        self.delays = delays

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    def __getattr__(self, name):
        return getattr(time, name)


@contextlib.contextmanager
def fast_backoff() -> Iterator[list[float]]:
    """Retries go at once; yields the delays botocore computed (standard or legacy mode alike)."""
    import botocore.endpoint

    delays: list[float] = []
    real = botocore.endpoint.time
    botocore.endpoint.time = _NoSleepTime(delays)
    try:
        yield delays
    finally:
        botocore.endpoint.time = real
