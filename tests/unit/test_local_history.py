"""Local mode's history: the in-memory store's change feed, turned into history by the consumer
HistoryFunction runs on AWS (infra/history.py), with a failure injected at every put in turn."""

from __future__ import annotations

import pytest

from infra.ports import StoreError, TaskLabels
from loopline.memory.local_mode import LocalMode
from statemachine.history import RunSeen
from tests.conftest import compile_yaml
from tests.e2e.test_history import CHAIN


def run_chain(local: LocalMode, fail_at: int | None = None, expected_failures: int | None = None) -> list:
    """Run CHAIN to its end and its history to the feed's end; the ``fail_at``-th put fails once
    (``expected_failures``: how many deliveries fail, one by default if ``fail_at`` is given)."""
    real, puts = local.history.append, []

    def append(entry, retention=None):
        puts.append(entry.sort_key)
        if len(puts) == fail_at:
            raise StoreError("injected: the history store refused a put")
        return real(entry, retention)

    local.history.append = append  # type: ignore[method-assign]
    run_id = local.engine.start_run(compile_yaml(CHAIN), {})
    failures = 0
    for _ in range(10_000):
        try:
            if local.pump_once() == 0 and local.store.get_run(run_id).status == "COMPLETED" and not len(local.feed):
                break
        except StoreError:
            failures += 1  # the feed kept the record: the next pump delivers it again
    if expected_failures is None:
        expected_failures = 1 if fail_at is not None else 0
    assert failures == expected_failures
    return [(e.kind, e.item, e.status, e.previous, e.attempt, e.reason, e.cause)
            for e in local.history.of_run(run_id, limit=500).items]


@pytest.fixture(params=["memory", "sqlite"])
def fresh(clock, request, tmp_path):
    """Local mode in memory, or on a state directory (its feed a table of the state file)."""
    made = []

    def make() -> LocalMode:
        state = tmp_path / f"state-{len(made)}" if request.param == "sqlite" else None
        made.append(LocalMode(clock=clock, inline_code=True, state=state))
        return made[-1]
    yield make
    for mode in made:
        mode.close()


def test_local_mode_keeps_every_transition(fresh):
    entries = run_chain(fresh())
    assert [(k, i, s) for k, i, s, *_ in entries] == [
        ("run", "", "RUNNING"), ("task", "a", "RUNNING"), ("task", "a", "COMPLETED"), ("task", "b", "RUNNING"),
        ("task", "b", "COMPLETED"), ("task", "c", "RUNNING"), ("task", "c", "COMPLETED"), ("run", "", "COMPLETED")]


def test_a_failure_at_any_put_loses_and_repeats_nothing(fresh):
    expected = run_chain(fresh())
    for fail_at in range(1, len(expected) + 1):
        assert run_chain(fresh(), fail_at) == expected, f"the put number {fail_at} failed"


def test_a_redrive_is_in_the_history_with_the_items_it_reset(local, clock, monkeypatch):
    from tests.unit.test_engine_redrive import CHAIN as REDRIVEN
    from tests.unit.test_engine_redrive import breakable, failed_run

    ran = breakable(monkeypatch)
    run_id, _ = failed_run(local, clock, ran, REDRIVEN, "b")
    local.engine.redrive_run(run_id)
    while local.pump_once() or len(local.feed):
        pass
    entries = [(e.item, e.previous, e.status, e.reason) for e in local.history.of_run(run_id, limit=500).items]
    assert ("", "RUNNING", "FAILED", "failed: Broken") in entries
    assert ("b", "FAILED", "PENDING", "reset by redrive 1") in entries
    assert ("", "FAILED", "RUNNING", "redrive 1: 1 tasks kept") in entries  # a: the only one kept
    assert entries[-1][:3] == ("", "RUNNING", "COMPLETED")
    assert not any(item == "a" and reason.startswith("reset") for item, _, _, reason in entries)  # kept, not reset


def test_local_modes_consumer_feeds_the_metrics_registry_once_per_change(fresh):
    local = fresh()
    run_chain(local, fail_at=3)  # the third put fails once: that record is delivered again
    text = local.metrics.render().splitlines()
    assert 'loopline_runs_started_total{status="RUNNING",workflow="chain"} 1' in text
    assert 'loopline_runs_completed_total{status="COMPLETED",workflow="chain"} 1' in text
    # A task's series is labelled with its run's workflow and its type (infra/task_context.py).
    assert 'loopline_task_duration_seconds_count{status="COMPLETED",task_type="python",workflow="chain"} 3' in text
    assert not any(line.startswith('loopline_task_duration_seconds_count{status="COMPLETED"}') for line in text)


def test_a_task_label_look_up_failing_once_loses_no_point(fresh):
    """The look-up is made before the entries are appended: the record, delivered again, still counts."""
    local = fresh()
    real, calls = local.recorder.context, []

    class FailingOnce:  # the TaskContext port, its first answer a storage error
        def of(self, run_id: str, task_key: str) -> TaskLabels:
            calls.append(task_key)
            if len(calls) == 1:
                raise StoreError("injected: the runs table refused a read")
            return real.of(run_id, task_key)

        def retention(self, run_id: str) -> float | None:
            return real.retention(run_id)

        def saw(self, run: RunSeen) -> None:
            real.saw(run)

    local.recorder.context = FailingOnce()
    run_chain(local, expected_failures=1)
    text = local.metrics.render().splitlines()
    assert 'loopline_task_duration_seconds_count{status="COMPLETED",task_type="python",workflow="chain"} 3' in text
    assert calls[0] == calls[1]  # the failed record's look-up, made again when it came again
