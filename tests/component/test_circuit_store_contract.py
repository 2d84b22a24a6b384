"""The circuit breakers' part of the StateStore contract (StateStore.get_circuit / put_circuit), on every
adapter of tests/component/test_store_contract.py (memory, memory through the worker's recall, SQLite,
DynamoDB on a fresh moto per test, with and without claims): a write applies only over the version it
was decided on, and concurrent workers counting failures through the engine's Circuits lose none."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from infra.clock import ManualClock
from infra.engine.circuits import Circuits
from infra.engine.journal import Journal, KeptTransitions
from infra.tasks.base import TaskFailure
from loopline.embedded.concurrency import linearizable_moto
from statemachine.circuit import Circuit, CircuitState
from statemachine.plan import BreakerSpec
from tests.component.test_store_contract import store  # noqa: F401 (the fixture, every adapter)

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_a_breaker_is_stored_once_and_then_only_over_the_version_read(store) -> None:  # noqa: F811
    assert store.get_circuit("payments_api") is None
    first = Circuit("payments_api", failures=((1, "run-1/charge/1/0"),))
    applied, stored = store.put_circuit(first)
    assert applied and stored == Circuit("payments_api", failures=((1, "run-1/charge/1/0"),), version=1)
    assert store.get_circuit("payments_api") == stored

    again = store.put_circuit(Circuit("payments_api", state=CircuitState.OPEN))  # decided on "none stored"
    assert again == (False, stored)
    opened = Circuit("payments_api", state=CircuitState.OPEN, open_until=5, changed_at=2, version=1)
    applied, stored = store.put_circuit(opened)
    assert applied and stored.version == 2 and stored.state is CircuitState.OPEN and stored.open_until == 5
    stale = store.put_circuit(Circuit("payments_api", version=1))  # decided on version 1: version 2 won
    assert stale == (False, stored)
    assert store.get_circuit("payments_api") == stored
    assert store.get_circuit("other") is None  # one record per name


def test_concurrent_workers_lose_no_failure(store) -> None:  # noqa: F811
    clock = ManualClock(T0)
    circuits = Circuits(store, clock, Journal(clock, KeptTransitions()))
    spec = BreakerSpec(name="flaky", failures=100, window=3600, open_for=30)
    threads, per_thread = 6, 4
    barrier = threading.Barrier(threads)

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            try:
                with circuits.after(spec, f"run-{n}/t/{i}/0", _failure()):
                    pass
            except BaseException as error:  # shown by the assertion below, not lost with the thread
                errors.append(error)

    running = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    # moto made atomic per request, as DynamoDB is (without it moto itself lets two conditional puts pass).
    with linearizable_moto():
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
    assert not errors, errors
    stored = store.get_circuit("flaky")
    assert stored is not None and stored.state is CircuitState.CLOSED
    assert sorted(holder for _, holder in stored.failures) == sorted(
        f"run-{n}/t/{i}/0" for n in range(threads) for i in range(per_thread))
    assert stored.version == threads * per_thread


def test_concurrent_attempts_after_open_for_let_one_trial_through(store) -> None:  # noqa: F811
    clock = ManualClock(T0)
    circuits = Circuits(store, clock, Journal(clock, KeptTransitions()))
    spec = BreakerSpec(name="down", failures=1, window=60, open_for=30)
    with circuits.after(spec, "run-0/t/1/0", _failure()):
        pass
    assert store.get_circuit("down").state is CircuitState.OPEN
    clock.advance(30)
    barrier, refusals = threading.Barrier(6), []

    def attempt(n: int) -> None:
        barrier.wait()
        refusals.append(circuits.admit(spec, f"run-{n + 1}/t/1/0"))

    running = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    with linearizable_moto():  # as above
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
    assert sum(refusal is None for refusal in refusals) == 1
    assert {refusal.error_type for refusal in refusals if refusal is not None} == {"CircuitOpen"}
    assert store.get_circuit("down").state is CircuitState.HALF_OPEN


def _failure() -> TaskFailure:
    return TaskFailure("ConnectionError", "down")
