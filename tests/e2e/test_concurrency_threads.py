"""Issue #5 item 2 with real threads: duplicates delivered at the same moment, workers racing on runs.

Every invocation runs in a thread of its own (its own Lambda container), without the local
runtime's one-at-a-time lock; moto is linearizable per request, so the threads interleave at
AWS-call granularity, as concurrent Lambdas do against DynamoDB and SQS. Each case is repeated
to shake races out (LOOPLINE_CONCURRENCY_ROUNDS=100 for a longer soak); test_concurrency.py and
test_concurrency_links.py enumerate the interleavings instead.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from tests.concurrency import TIMEOUT, Outcome, together
from tests.e2e.concurrent_runs import (
    APPROVAL,
    CHAIN,
    ENDED,
    FAN_OUT,
    FAN_OUT_ACTIONS,
    FAN_OUT_OUTPUTS,
    WAIT,
    post_decision,
    start_of,
    summary,
    timer_input,
    waiting_approval,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
ROUNDS = int(os.environ.get("LOOPLINE_CONCURRENCY_ROUNDS", "10"))


@pytest.fixture(autouse=True)
def no_worker_errors(bench):
    bench.lambdas.errors.clear()
    yield
    assert bench.lambdas.errors == [], bench.lambdas.errors[0]


def test_the_same_start_message_delivered_three_times_at_once(bench):
    clean = summary(bench.finish(bench.start(CHAIN)))
    for _ in range(ROUNDS):
        run_id = bench.start(CHAIN)
        [message] = bench.hold(start_of(run_id))  # its handling runs a, the first task
        for outcome in together(*[lambda: bench.lambdas.deliver(message)] * 3):
            outcome.get()
        assert summary(bench.finish(run_id)) == clean
        assert bench.actions(run_id) == Counter(a=1, b=1)


def test_a_timer_delivered_twice_at_once_advances_once(bench):
    for _ in range(ROUNDS):
        run_id = bench.start(WAIT)
        bench.step_past(start_of(run_id))  # it runs pause, which begins its wait
        body = timer_input(bench.runtime.aws, run_id)
        bench.clock.advance(timedelta(hours=2, seconds=1).total_seconds())
        first, second = bench.send(body, 2)
        for outcome in together(lambda: bench.lambdas.deliver(first), lambda: bench.lambdas.deliver(second)):
            outcome.get()
        done = bench.finish(run_id)
        assert done["status"] == "COMPLETED"
        assert done["tasks"]["pause"]["attempts"] == 1 and done["tasks"]["after"]["output"] == "woke"
        assert bench.actions(run_id) == Counter(after=1)


def test_one_approval_link_posted_at_once_decides_once(bench):
    """Rounds take turns: the same approval POSTed twice, approve against reject, reject against approve."""
    for round_ in range(ROUNDS):
        run_id, links = waiting_approval(bench, APPROVAL)
        decisions = [("APPROVED", "APPROVED"), ("APPROVED", "REJECTED"), ("REJECTED", "APPROVED")][round_ % 3]
        answers = [o.get() for o in together(*[
            (lambda d=d: post_decision(bench, links["a@example.com"], d)) for d in decisions])]
        statuses = [status for status, _ in answers]
        assert statuses.count(200) == 1 and set(statuses) - {200} <= {409, 410}, answers
        winner = decisions[statuses.index(200)]
        done = bench.finish(run_id)
        assert done["status"] == "COMPLETED", done
        assert done["tasks"]["ask"]["output"]["decision"] == winner == done["tasks"]["after"]["output"]
        assert len(done["tasks"]["ask"]["output"]["votes"]) == 1
        assert bench.actions(run_id) == Counter(after=1)


def workers(bench, count: int, stop: threading.Event, duplicate: float) -> list[threading.Thread]:
    """``count`` pollers on the worker's queues, each receiving batches of 1 to 3; with probability
    ``duplicate`` a received message is first put on the queue again (SQS delivers at least once)."""
    def work(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            messages = bench.lambdas.receive(rng.randint(1, 3))
            if not messages:
                time.sleep(0.002)
                continue
            for message in messages:
                if rng.random() < duplicate:
                    bench.lambdas.sqs.send_message(QueueUrl=message["_queue"], MessageBody=message["Body"])
            bench.lambdas.deliver(*messages)

    def guarded(seed: int) -> None:
        outcome = Outcome(lambda: work(seed))
        if outcome.error is not None:
            bench.lambdas.errors.append(f"poller died: {outcome.error!r}")

    threads = [threading.Thread(target=guarded, args=(seed,), daemon=True) for seed in range(count)]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.parametrize("count,duplicate", [(2, 0.0), (4, 0.3)], ids=["2-workers", "4-workers-duplicating"])
def test_workers_racing_on_fan_out_runs_advance_each_task_once(bench, count, duplicate):
    runs = [bench.start(FAN_OUT) for _ in range(max(2, ROUNDS // 3))]
    stop = threading.Event()
    threads = workers(bench, count, stop, duplicate)
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and not bench.lambdas.errors:
            if all(bench.status(run_id) in ENDED for run_id in runs):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT)
    for run_id in runs:
        done = bench.view(run_id)
        assert done["status"] == "COMPLETED", json.dumps(done, default=str)[:2000]
        assert done["outputs"] == FAN_OUT_OUTPUTS
        assert {t["attempts"] for t in done["tasks"].values()} == {1}
        assert bench.actions(run_id) == FAN_OUT_ACTIONS
