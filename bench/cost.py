"""Dollars per million transitions on AWS, priced from the calls bench/transitions.py counts.

Runs each workload on the embedded default with bench/transitions.py's counting (its
``CallCounter`` and ``Bench``, imported, not copied), and adds what a bill needs and a call
count does not say: the size of every DynamoDB item read and written (from the emulated calls'
own requests and responses), the size of every SQS message sent, how many messages each worker
invocation handled, and how long it ran. Those are priced at us-east-1 list prices, each one a
named constant below with where it comes from.

    .venv/bin/python bench/cost.py [--repeat 2] [--items 100]

Workloads (each step a no-op, so the figures are the engine's cost and not user code's):
chain = 10 zero-second waits in a chain, fan-out = 1 -> 8 -> 1 zero-second waits, for_each =
a for_each over N items of one zero-second wait (priced per iteration).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import transitions  # noqa: E402  (bench/transitions.py: the counting this prices)

# ------------------------------------------------------------------ prices (us-east-1, list)

# AWS Lambda pricing page (aws.amazon.com/lambda/pricing), x86, first tier.
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_SECOND = 0.0000166667
# template.yaml: Globals.Function.MemorySize, which WorkerFunction does not override.
WORKER_MEMORY_GB = 512 / 1024
# Lambda bills duration rounded up to the next millisecond (same pricing page).
LAMBDA_BILLING_GRANULARITY_MS = 1.0

# DynamoDB on-demand pricing page (aws.amazon.com/dynamodb/pricing/on-demand), since on-demand
# throughput was halved on 1 November 2024 (it was $1.25 and $0.25 before).
DYNAMODB_PER_WRU = 0.625 / 1e6
DYNAMODB_PER_RRU = 0.125 / 1e6
# DynamoDB developer guide, "Read/write capacity mode": a write unit is 1 KB, a read unit 4 KB
# strongly consistent (an eventually consistent read is half a unit); transactional reads and
# writes cost twice.
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
TRANSACTION_FACTOR = 2

# Amazon SQS pricing page (aws.amazon.com/sqs/pricing), standard queue: every API action is a
# request, and each 64 KB chunk of a payload is billed as one request.
SQS_PER_REQUEST = 0.40 / 1e6
SQS_CHUNK_BYTES = 64 * 1024

# EventBridge Scheduler pricing page (aws.amazon.com/eventbridge/pricing): per invocation.
SCHEDULER_PER_INVOCATION = 1.00 / 1e6

# Amazon S3 pricing page, S3 Standard: PUT/COPY/POST/LIST $0.005 per 1,000, GET $0.0004 per 1,000.
S3_PER_PUT = 0.005 / 1000
S3_PER_GET = 0.0004 / 1000

# Handler time: ASSUMED, not measured. On moto every call costs milliseconds of in-process
# emulation, so the measured handler time (printed beside it) is an upper bound that says more
# about moto than about Lambda. The assumption: each AWS call the worker makes waits this long
# (DynamoDB's "single-digit millisecond" latency; SQS SendMessage is of the same order), plus the
# engine's own Python per invocation.
ASSUMED_MS_PER_AWS_CALL = 8.0
ASSUMED_ENGINE_MS_PER_INVOCATION = 5.0

# Issue #12 item 3's goals, $ per million transitions.
GOALS = {"chain": 1.00, "fan-out": 1.50, "for_each": 1.50}

ASSUMPTIONS = (
    f"Lambda ${LAMBDA_PER_REQUEST * 1e6:.2f}/M requests, ${LAMBDA_PER_GB_SECOND}/GB-s, worker at"
    f" {WORKER_MEMORY_GB * 1024:.0f} MB (template.yaml Globals), duration billed per"
    f" {LAMBDA_BILLING_GRANULARITY_MS:g} ms",
    f"worker handler time ASSUMED: {ASSUMED_MS_PER_AWS_CALL:g} ms per AWS call it makes +"
    f" {ASSUMED_ENGINE_MS_PER_INVOCATION:g} ms per invocation (the moto-measured time is shown apart)",
    f"DynamoDB on-demand ${DYNAMODB_PER_WRU * 1e6:.2f}/M WRU, ${DYNAMODB_PER_RRU * 1e6:.2f}/M RRU;"
    f" {WRITE_UNIT_BYTES} B per WRU, {READ_UNIT_BYTES} B per RRU (eventually consistent: half),"
    f" transactions x{TRANSACTION_FACTOR}",
    "DynamoDB item sizes measured from the emulated calls: reads from the items returned, PutItem from"
    " the item sent, UpdateItem from the item's size at the end of the run (an upper bound: items grow);"
    " a write to an item gone by then, or a read of a missing item, costs the minimum unit",
    f"SQS ${SQS_PER_REQUEST * 1e6:.2f}/M requests, a request per {SQS_CHUNK_BYTES // 1024} KB chunk of"
    " each message (message sizes measured)",
    "SQS poller (the Lambda event source mapping): one ReceiveMessage and one DeleteMessageBatch per"
    " non-empty batch, as measured; its empty long-polls are a per-queue cost over time, not per"
    " transition, and are left out",
    f"EventBridge Scheduler ${SCHEDULER_PER_INVOCATION * 1e6:.2f}/M invocations: one per CreateSchedule",
    f"S3 ${S3_PER_PUT * 1e6:.2f}/M PUT, ${S3_PER_GET * 1e6:.2f}/M GET, if called",
    "start: the API's start_run calls (PutItem run, SendMessage start) at the same prices; the API"
    " Gateway request and API Lambda invocation behind POST /runs are not priced",
    "not priced: the history consumer (HistoryFunction, its PutItems and the stream), CloudWatch,"
    " storage, data transfer, free tiers",
)


# ------------------------------------------------------------------ pure pricing


@dataclass(frozen=True)
class Usage:
    """What a bill counts, for some number of transitions."""

    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    sqs_requests: float = 0.0  # billed requests: 64 KB chunks already counted
    scheduler_invocations: float = 0.0
    s3_puts: float = 0.0
    s3_gets: float = 0.0


def price(usage: Usage) -> dict[str, float]:
    """Dollars by service for ``usage``."""
    return {
        "lambda": usage.lambda_requests * LAMBDA_PER_REQUEST + usage.lambda_gb_seconds * LAMBDA_PER_GB_SECOND,
        "dynamodb": usage.dynamodb_wru * DYNAMODB_PER_WRU + usage.dynamodb_rru * DYNAMODB_PER_RRU,
        "sqs": usage.sqs_requests * SQS_PER_REQUEST,
        "scheduler": usage.scheduler_invocations * SCHEDULER_PER_INVOCATION,
        "s3": usage.s3_puts * S3_PER_PUT + usage.s3_gets * S3_PER_GET,
    }


def per_million(usage: Usage, transitions_count: float) -> dict[str, float]:
    """Dollars by service per million transitions, for ``usage`` spent on ``transitions_count``."""
    return {k: v * 1e6 / transitions_count for k, v in price(usage).items()}


def billed_ms(ms: float) -> float:
    return math.ceil(ms / LAMBDA_BILLING_GRANULARITY_MS) * LAMBDA_BILLING_GRANULARITY_MS


def lambda_gb_seconds(invocations: float, ms_each: float, memory_gb: float = WORKER_MEMORY_GB) -> float:
    return invocations * billed_ms(ms_each) / 1000 * memory_gb


def write_units(size_bytes: float, transactional: bool = False) -> float:
    return max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES)) * (TRANSACTION_FACTOR if transactional else 1)


def read_units(size_bytes: float, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES)) * (TRANSACTION_FACTOR if transactional else 1)
    return units if consistent or transactional else units / 2


def sqs_requests(payload_bytes: float) -> int:
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def item_size(item: dict[str, Any]) -> int:
    """A DynamoDB item's size as the developer guide counts it ("Item sizes and formats"):
    each attribute's name in UTF-8 plus its value; typed JSON as the low-level client sends it."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = len(str(v).lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(v) if isinstance(v, (bytes, bytearray)) else len(str(v).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(n.encode()) + _value_size(x) + 1 for n, x in v.items())
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v)
    raise ValueError(f"unknown DynamoDB type {kind}")


# ------------------------------------------------------------------ measuring


def _key(table: str, key: dict[str, Any]) -> tuple[str, str]:
    return table, json.dumps(key, sort_keys=True)


@dataclass
class Sized:
    """Billing facts of the counted calls, by tag."""

    wru: collections.Counter = field(default_factory=collections.Counter)
    rru: collections.Counter = field(default_factory=collections.Counter)
    sqs: collections.Counter = field(default_factory=collections.Counter)
    updates: list[tuple[str, tuple[str, str], bool]] = field(default_factory=list)  # tag, key, transactional
    message_bytes: list[int] = field(default_factory=list)
    write_bytes: list[int] = field(default_factory=list)
    read_bytes: list[int] = field(default_factory=list)


class SizingCounter(transitions.CallCounter):
    """transitions.CallCounter that also sizes what each counted call reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.sized = Sized()
        self._params: dict[int, dict[str, Any]] = {}

    def register(self, session) -> None:
        super().register(session)
        session.events.register("before-parameter-build", self._before_params)

    def _before_params(self, params, model, **_):
        if self.enabled:
            # before-call and after-call see the serialized request; keep the caller's params.
            self._local.params = (model.name, params)

    def _after_call(self, model, parsed=None, http_response=None, **kwargs):
        super()._after_call(model, parsed=parsed, http_response=http_response, **kwargs)
        if not self.enabled:
            return
        name, params = getattr(self._local, "params", (None, None))
        if name != model.name or params is None:
            return
        service = model.service_model.service_name
        if service == "dynamodb":
            self._dynamodb(model.name, params, parsed or {})
        elif service == "sqs":
            self._sqs(model.name, params)

    def _dynamodb(self, op: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        tag, sized = self.tag, self.sized
        if op == "PutItem":
            size = item_size(params["Item"])
            sized.write_bytes.append(size)
            sized.wru[tag] += write_units(size)
        elif op in ("UpdateItem", "DeleteItem"):
            sized.updates.append((tag, _key(params["TableName"], params["Key"]), False))
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                if kind == "Put":
                    size = item_size(body["Item"])
                    sized.write_bytes.append(size)
                    sized.wru[tag] += write_units(size, transactional=True)
                elif kind in ("Update", "Delete", "ConditionCheck"):
                    # A ConditionCheck is billed as a transactional write of the item it checks.
                    sized.updates.append((tag, _key(body["TableName"], body["Key"]), True))
        elif op == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        size = item_size(request["PutRequest"]["Item"])
                        sized.write_bytes.append(size)
                        sized.wru[tag] += write_units(size)
                    else:
                        sized.wru[tag] += write_units(0)
        elif op == "BatchGetItem":
            # Sized from the items returned: right while the worker reads whole items (it sets no
            # ProjectionExpression); a projection would return less than DynamoDB bills.
            for table, spec in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                for item in found:
                    sized.read_bytes.append(item_size(item))
                    sized.rru[tag] += read_units(item_size(item), bool(spec.get("ConsistentRead")))
                missing = len(spec["Keys"]) - len(found)
                sized.rru[tag] += missing * read_units(0, bool(spec.get("ConsistentRead")))
        elif op == "GetItem":
            size = item_size(parsed["Item"]) if "Item" in parsed else 0
            sized.rru[tag] += read_units(size, bool(params.get("ConsistentRead")))
        elif op in ("Query", "Scan"):
            # One read unit per 4 KB of all the items a page reads, summed before rounding.
            size = sum(item_size(i) for i in parsed.get("Items", []))
            sized.rru[tag] += read_units(size, bool(params.get("ConsistentRead")))
        elif op == "TransactGetItems":
            for entry in parsed.get("Responses", []):
                sized.rru[tag] += read_units(item_size(entry.get("Item", {})), True, transactional=True)

    def _sqs(self, op: str, params: dict[str, Any]) -> None:
        if op == "SendMessage":
            size = len(params["MessageBody"].encode()) + _attributes_size(params.get("MessageAttributes", {}))
            self.sized.message_bytes.append(size)
            self.sized.sqs[self.tag] += sqs_requests(size)
        elif op == "SendMessageBatch":
            size = sum(len(e["MessageBody"].encode()) + _attributes_size(e.get("MessageAttributes", {}))
                       for e in params["Entries"])
            self.sized.message_bytes.append(size)
            self.sized.sqs[self.tag] += sqs_requests(size)  # a batch is billed on its total payload

    def take_sized(self) -> Sized:
        taken, self.sized = self.sized, Sized()
        return taken


def _attributes_size(attributes: dict[str, Any]) -> int:
    return sum(len(n.encode()) + len(a.get("DataType", "").encode())
               + len(str(a.get("StringValue", a.get("BinaryValue", ""))).encode()) for n, a in attributes.items())


@dataclass
class Workload:
    name: str
    file: str
    units: Callable[[transitions.Measured], int]  # transitions a run counts for pricing
    unit_label: str


@dataclass
class Priced:
    workload: Workload
    units: float
    measured: transitions.Measured
    invocations: float
    messages: float
    handler_ms_measured: float
    worker: Usage
    poller: Usage
    start: Usage
    notes: dict[str, float]


def measure_workload(bench: transitions.Bench, counter: SizingCounter, workload: Workload, repeat: int,
                     timeout: float) -> Priced:
    bench.use_runtime("system")
    runtime = bench.runtime
    invocations: list[tuple[int, float]] = []  # (messages, ms) of each counted worker invocation
    inner = runtime.invoke

    def timed_invoke(function_id: str, event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return inner(function_id, event)
        finally:
            if counter.enabled and "Worker" in function_id:
                invocations.append((len(event.get("Records", [])), (time.perf_counter() - started) * 1000))

    runtime.invoke = timed_invoke
    try:
        measured = transitions.measure(bench, workload.name, transitions.WORKFLOWS / workload.file, "system",
                                       repeat, timeout)
    finally:
        runtime.invoke = inner
    sized = counter.take_sized()
    # UpdateItem/DeleteItem/ConditionCheck: the item's size now, read outside the counting.
    client = bench.aws.client("dynamodb")
    sizes: dict[tuple[str, str], int] = {}
    for tag, key, transactional in sized.updates:
        if key not in sizes:
            found = client.get_item(TableName=key[0], Key=json.loads(key[1])).get("Item")
            sizes[key] = item_size(found) if found else 0
        sized.write_bytes.append(sizes[key])
        sized.wru[tag] += write_units(sizes[key], transactional)

    def calls(tag: str, service: str, op: str | None = None) -> float:
        return sum(v for (t, s, o), v in measured.calls.items() if t == tag and s == service and op in (None, o))

    n_inv = len(invocations) / repeat
    calls_per_invocation = sum(v for (t, _, _), v in measured.calls.items() if t == "handler") / max(n_inv, 1e-9)
    assumed_ms = calls_per_invocation * ASSUMED_MS_PER_AWS_CALL + ASSUMED_ENGINE_MS_PER_INVOCATION
    measured_ms = sum(ms for _, ms in invocations) / max(len(invocations), 1)
    worker = Usage(
        lambda_requests=n_inv,
        lambda_gb_seconds=lambda_gb_seconds(n_inv, assumed_ms),
        dynamodb_wru=sized.wru["handler"] / repeat,
        dynamodb_rru=sized.rru["handler"] / repeat,
        sqs_requests=sized.sqs["handler"] / repeat,
        scheduler_invocations=calls("handler", "scheduler", "CreateSchedule"),
        s3_puts=calls("handler", "s3", "PutObject"),
        s3_gets=calls("handler", "s3", "GetObject"),
    )
    nonempty = calls("poller", "sqs", "ReceiveMessage") - measured.empty_receives.get("poller", 0)
    poller = Usage(sqs_requests=nonempty + calls("poller", "sqs", "DeleteMessageBatch"))
    start = Usage(dynamodb_wru=sized.wru["api"] / repeat, dynamodb_rru=sized.rru["api"] / repeat,
                  sqs_requests=sized.sqs["api"] / repeat)
    units = workload.units(measured)
    return Priced(
        workload=workload, units=units, measured=measured, invocations=n_inv,
        messages=sum(m for m, _ in invocations) / repeat, handler_ms_measured=measured_ms, worker=worker,
        poller=poller, start=start,
        notes={"assumed_ms": assumed_ms,
               "moto_worker_usd": sum(per_million(Usage(
                   lambda_requests=n_inv, lambda_gb_seconds=lambda_gb_seconds(n_inv, measured_ms)), units).values()),
               "assumed_lambda_usd": per_million(Usage(lambda_requests=n_inv,
                                                       lambda_gb_seconds=worker.lambda_gb_seconds), units)["lambda"],
               "avg_write_bytes": sum(sized.write_bytes) / max(len(sized.write_bytes), 1),
               "avg_read_bytes": sum(sized.read_bytes) / max(len(sized.read_bytes), 1),
               "avg_message_bytes": sum(sized.message_bytes) / max(len(sized.message_bytes), 1)})


# ------------------------------------------------------------------ printing


def _add(*usages: Usage) -> Usage:
    fields = Usage.__dataclass_fields__
    return Usage(**{f: sum(getattr(u, f) for u in usages) for f in fields})


def report(results: Iterable[Priced]) -> None:
    services = ("lambda", "dynamodb", "sqs", "scheduler", "s3")
    rows = []
    for p in results:
        worker = per_million(p.worker, p.units)
        with_poller = sum(per_million(_add(p.worker, p.poller), p.units).values())
        everything = sum(per_million(_add(p.worker, p.poller, p.start), p.units).values())
        goal = GOALS[p.workload.name]
        rows.append([p.workload.name, f"{p.units:g} {p.workload.unit_label}",
                     *(f"{worker[s]:.3f}" for s in services), f"{sum(worker.values()):.2f}",
                     f"{with_poller:.2f}", f"{everything:.2f}", f"{goal:.2f}",
                     f"{sum(worker.values()) / goal:.2f}x", f"{everything / goal:.2f}x"])
    print("\n## $ per million transitions, us-east-1 list prices\n")
    print(transitions._table(["workload", "per run", *services, "worker $", "+ poller $", "+ start $",
                              "goal $", "worker/goal", "all/goal"], rows))
    print("\nworker = the worker Lambda's invocations and the calls its code makes (transitions.py's 'handler');"
          " + poller = the SQS event source mapping's non-empty receives and deletes; + start = start_run's calls."
          " The goal (issue #12 item 3) is met when the ratio is <= 1.00x.")


def report_usage(results: Iterable[Priced]) -> None:
    print("\n## What was priced, per transition\n")
    rows = []
    for p in results:
        n, w = p.units, p.worker
        rows.append([p.workload.name, f"{p.invocations / n:.2f}", f"{p.messages / max(p.invocations, 1e-9):.2f}",
                     f"{p.notes['assumed_ms']:.0f}", f"{p.handler_ms_measured:.1f}",
                     f"{w.dynamodb_wru / n:.2f}", f"{w.dynamodb_rru / n:.2f}", f"{w.sqs_requests / n:.2f}",
                     f"{p.poller.sqs_requests / n:.2f}", f"{p.notes['avg_write_bytes']:.0f}",
                     f"{p.notes['avg_read_bytes']:.0f}", f"{p.notes['avg_message_bytes']:.0f}",
                     f"{p.notes['assumed_lambda_usd']:.3f}", f"{p.notes['moto_worker_usd']:.3f}"])
    print(transitions._table(["workload", "invocations", "msgs/invocation", "assumed ms/inv", "moto ms/inv",
                              "WRU", "RRU", "SQS req", "poller req", "avg write B", "avg read B", "avg msg B",
                              "lambda $ (assumed ms)", "lambda $ (moto ms)"], rows))
    print("\nWRU, RRU, SQS req: the worker's, per transition. avg write B: the items written, as priced"
          " (UpdateItem: the item's size at the end). lambda $ (moto ms): the worker's Lambda cost per million"
          " transitions had each invocation run as long as it did here on moto (an upper bound).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="counted runs per workload (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take (default 120)")
    parser.add_argument("--only", choices=sorted(GOALS), action="append", help="workloads to price (default all)")
    args = parser.parse_args(argv)
    print("$ " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]))
    import moto

    print(f"# embedded default: moto {moto.__version__} in-process, Python {platform.python_version()},"
          f" {os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for_each_items = _count_default_items(transitions.WORKFLOWS / "for_each_100.yaml")
    workloads = [
        Workload("chain", "wait0_chain_10.yaml", lambda m: m.transitions, "transitions"),
        Workload("fan-out", "wait0_fanout_8.yaml", lambda m: m.transitions, "transitions"),
        # The loop's iterations are not task nodes of the run: a for_each is priced per iteration.
        Workload("for_each", "for_each_100.yaml", lambda m: for_each_items, "iterations"),
    ]
    counter = SizingCounter()
    t0 = time.perf_counter()
    bench = transitions.Bench(counter)
    try:
        results = [measure_workload(bench, counter, w, args.repeat, args.timeout)
                   for w in workloads if not args.only or w.name in args.only]
    finally:
        bench.stop()
    report(results)
    report_usage(results)
    print("\nAssumptions:")
    for line in ASSUMPTIONS:
        print(f"  - {line}")
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    return 0


def _count_default_items(path: Path) -> int:
    import yaml

    document = yaml.safe_load(path.read_text())
    return len(document["workflow"]["inputs"]["defaults"]["items"])


if __name__ == "__main__":
    sys.exit(main())
