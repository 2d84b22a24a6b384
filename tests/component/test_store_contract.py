"""The StateStore contract, run against every adapter: InMemoryStore, DynamoStore (on moto) and
SQLiteStore (a fresh database file per test).

Every test here must behave identically on both stores: the in-memory store is
what local mode and the unit tests run on, so any difference from DynamoDB is a
bug that only shows up once deployed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from infra.aws.claims import DEFAULT_THRESHOLD
from infra.aws.dynamo_store import DynamoStore
from infra.aws.payloads import S3Payloads
from infra.clock import ManualClock
from infra.engine.recall import RecallingStore
from infra.ports import (
    ConditionFailed,
    LostRace,
    RequestClosed,
    RunGone,
    RunRecord,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    TokenUsed,
    Written,
)
from loopline.memory.store import InMemoryStore
from loopline.sqlite.db import Database
from loopline.sqlite.store import SQLiteStore
from statemachine.versions import WorkflowVersion

REGION = "us-east-1"
RUNS, DEFINITIONS, TOKENS = "loopline-runs", "loopline-definitions", "loopline-tokens"


def _create_tables(client) -> None:
    # As template.yaml defines them: runs/definitions pk+sk, tokens pk only, on demand.
    for name in (RUNS, DEFINITIONS):
        client.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    client.create_table(
        TableName=TOKENS, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])


# "dynamodb": as deployed (a payload bucket, the default 32 KB threshold: small values inline);
# "dynamodb+claims": every JSON value over 8 bytes goes through the S3 claim check, so the
# whole contract also holds when values live in the payload bucket.
@pytest.fixture(params=["memory", "memory+recall", "sqlite", "dynamodb", "dynamodb+claims"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator:
    if request.param == "memory":
        yield InMemoryStore()
        return
    if request.param == "memory+recall":
        # The engine's store inside a worker invocation (infra/engine/recall.py): loads answered from
        # what it read and wrote must be what the store itself would answer.
        recalling = RecallingStore(InMemoryStore(), ManualClock())
        with recalling.recalling():
            yield recalling
        return
    if request.param == "sqlite":
        db = Database(tmp_path / "state.db")
        yield SQLiteStore(db)
        db.close()
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_tables(client)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="loopline-payloads")
        payloads = S3Payloads(s3, "loopline-payloads", cache_bytes=0)  # every load reads S3
        threshold = 8 if request.param == "dynamodb+claims" else DEFAULT_THRESHOLD
        yield DynamoStore(client, runs_table=RUNS, definitions_table=DEFINITIONS, tokens_table=TOKENS,
                          payloads=payloads, claim_threshold=threshold)


def make_run(run_id: str = "run-1", **overrides) -> RunRecord:
    fields = dict(run_id=run_id, plan_hash="hash-1", workflow_id="wf", inputs={"n": 1, "name": "ünï"},
                  variables={"counter": 0}, created_at="2030-01-01T00:00:00.000Z", sinks_remaining=2)
    fields.update(overrides)
    return RunRecord(**fields)


def task_state(store, run_id: str, task_id: str) -> TaskRecord | None:
    return store.load(run_id, [task_id])[1].get(task_id)


def start(store, run_id: str, task_id: str, **fields) -> TaskRecord:
    """Put a task in RUNNING from a missing item, with extra fields."""
    return store.change_task(run_id, task_id, TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                                        set={"attempt": 1, **fields}))


def make_token(token_hash: str = "tok-1", expires_at: int | None = 2_000, **overrides) -> TokenRecord:
    fields = dict(token_hash=token_hash, run_id="run-1", task_id="t", attempt=1, kind="callback",
                  plan_hash="hash-1", expires_at=expires_at)
    fields.update(overrides)
    return TokenRecord(**fields)


# ------------------------------------------------------------------ plans


def test_plans_are_content_addressed(store) -> None:
    assert store.get_plan("abc") is None
    assert store.put_plan("abc", '{"plan":1}') is True
    assert store.put_plan("abc", '{"plan":1}') is False  # a second put of the same plan is fine
    assert store.get_plan("abc") == '{"plan":1}'
    assert store.put_plan("abc", '{"other":2}') is False  # the hash names the content: the first body stands
    assert store.get_plan("abc") == '{"plan":1}'
    assert store.get_plan("abd") is None


def test_a_plan_larger_than_a_dynamodb_item_round_trips(store) -> None:
    # A 2,000-task chain compiles to about 1.1 MB of plan JSON; DynamoDB holds 400 KB per item.
    body = '{"nodes":"' + "é" * 600_000 + '"}'
    store.put_plan("big", body)
    store.put_plan("big", body)  # content-addressed: putting it again changes nothing
    assert store.get_plan("big") == body
    store.put_plan("big", '{"other":2}')
    assert store.get_plan("big") == body


# ------------------------------------------------------------------ registry


def register(store, workflow_id: str, version: str, plan_hash: str, **extra) -> Written[WorkflowVersion]:
    return store.register_workflow(WorkflowVersion(workflow_id, version, plan_hash, **extra))


def newest(store, workflow_id: str) -> list[tuple[str, str]]:
    return [(v.version, v.plan_hash) for v in store.workflow_versions(workflow_id)]


def test_workflow_versions_newest_first_by_semver_and_by_exact_version(store) -> None:
    register(store, "wf", "1.10.0", "h-1.10.0")
    register(store, "wf", "1.9.0", "h-1.9.0")
    register(store, "wf", "1.2.0", "h-1.2.0")
    register(store, "other", "9.0.0", "h-other")
    # 1.10.0 is newer than 1.9.0
    assert newest(store, "wf") == [("1.10.0", "h-1.10.0"), ("1.9.0", "h-1.9.0"), ("1.2.0", "h-1.2.0")]
    assert store.get_workflow("wf", "1.9.0").plan_hash == "h-1.9.0"
    assert store.get_workflow("wf", "1.2.0") == WorkflowVersion("wf", "1.2.0", "h-1.2.0")
    assert store.get_workflow("wf", "1.3.0") is None
    assert newest(store, "other") == [("9.0.0", "h-other")]
    assert newest(store, "missing") == []
    assert store.get_workflow("missing", "1.0.0") is None


def test_workflow_versions_across_major_and_patch(store) -> None:
    for version in ("2.0.0", "10.0.0", "2.0.10", "2.0.9"):
        register(store, "wf", version, f"h-{version}")
    assert [v for v, _ in newest(store, "wf")] == ["10.0.0", "2.0.10", "2.0.9", "2.0.0"]


def test_workflow_versions_read_past_a_page(store) -> None:
    # DynamoDB reads them a page (10) at a time: the iterator goes on to the next.
    for patch in range(25):
        register(store, "wf", f"1.0.{patch}", f"h{patch}")
    assert [v for v, _ in newest(store, "wf")] == [f"1.0.{p}" for p in reversed(range(25))]


def test_a_release_is_newer_than_its_prerelease(store) -> None:
    register(store, "wf", "1.0.0", "release")
    register(store, "wf", "1.0.0-rc.1", "candidate")
    # semver 2.0.0, section 11: 1.0.0-rc.1 < 1.0.0
    assert store.get_workflow("wf", "1.0.0-rc.1").plan_hash == "candidate"
    assert newest(store, "wf") == [("1.0.0", "release"), ("1.0.0-rc.1", "candidate")]


def test_list_workflows_holds_every_version_ordered_by_semver(store) -> None:
    assert store.list_workflows() == []
    register(store, "wf", "1.10.0", "h10")
    register(store, "wf", "1.9.0", "h9")
    register(store, "wf", "1.2.0", "h2")
    register(store, "alpha", "0.1.0", "ha")
    assert [(w.workflow_id, w.version, w.plan_hash) for w in store.list_workflows()] == [
        ("alpha", "0.1.0", "ha"), ("wf", "1.2.0", "h2"), ("wf", "1.9.0", "h9"), ("wf", "1.10.0", "h10")]


def test_a_version_is_registered_once_and_keeps_what_it_was_registered_with(store) -> None:
    first = WorkflowVersion("wf", "1.0.0", "h1", registered_at="2030-01-01T00:00:00.000Z", changelog="first ünï",
                            compared_with="0.9.0", breaking=("task 'a' removed",))
    assert store.register_workflow(first) == Written(True, first)
    again = store.register_workflow(WorkflowVersion("wf", "1.0.0", "h2", registered_at="2030-01-02T00:00:00.000Z"))
    assert again == Written(False, first)  # the first registration stands, and is what the loser is told
    assert store.get_workflow("wf", "1.0.0") == first
    assert store.list_workflows() == [first]
    # Build metadata does not make another version (semver section 10): 1.0.0+b is 1.0.0.
    assert register(store, "wf", "1.0.0+build.7", "h3") == Written(False, first)
    assert store.get_workflow("wf", "1.0.0+build.7") == first


def test_concurrent_registrations_of_one_version_have_one_winner(store) -> None:
    barrier, results = threading.Barrier(8), []

    def attempt(n: int) -> None:
        barrier.wait()
        results.append((n, register(store, "race", "2.0.0", f"h{n}")))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, written in results if written.applied]
    assert len(winners) == 1 and len(results) == 8
    stored = store.get_workflow("race", "2.0.0")
    assert stored.plan_hash == f"h{winners[0]}"
    assert all(written.record == stored for _, written in results)


def test_deprecating_a_version_keeps_the_first_deprecation(store) -> None:
    register(store, "wf", "1.0.0", "h1", changelog="one")
    register(store, "wf", "1.1.0", "h2")
    assert store.deprecate_workflow("wf", "2.0.0", "2030-01-01T00:00:00.000Z", "no such") is None
    assert store.deprecate_workflow("gone", "1.0.0", "2030-01-01T00:00:00.000Z", "no such") is None
    done = store.deprecate_workflow("wf", "1.1.0", "2030-01-01T00:00:00.000Z", "leaks ünï")
    assert done == WorkflowVersion("wf", "1.1.0", "h2", deprecated_at="2030-01-01T00:00:00.000Z",
                                   deprecation="leaks ünï")
    assert done.deprecated
    again = store.deprecate_workflow("wf", "1.1.0", "2030-02-01T00:00:00.000Z", "other")
    assert again == done
    assert store.get_workflow("wf", "1.1.0") == done
    assert [v.deprecated for v in store.workflow_versions("wf")] == [True, False]
    assert store.get_workflow("wf", "1.0.0") == WorkflowVersion("wf", "1.0.0", "h1", changelog="one")
    # A deprecated version is still registered: registering it again is refused.
    assert register(store, "wf", "1.1.0", "h9") == Written(False, done)


# ------------------------------------------------------------------ runs


def test_create_run_once(store) -> None:
    assert store.get_run("run-1") is None
    created, run = store.create_run(make_run())
    assert created is True and run == make_run()
    written = store.create_run(make_run(plan_hash="hash-2", inputs={"other": True}, sinks_remaining=9))
    assert written.applied is False and written.record == make_run()  # the stored run, not the new one
    run = store.get_run("run-1")
    assert run == RunRecord(run_id="run-1", plan_hash="hash-1", workflow_id="wf", status="RUNNING",
                            inputs={"n": 1, "name": "ünï"}, variables={"counter": 0}, outputs=None, error=None,
                            created_at="2030-01-01T00:00:00.000Z", ended_at=None, sinks_remaining=2,
                            failed_tasks=frozenset())


def test_run_inputs_and_variables_round_trip(store) -> None:
    inputs = {"f": 1.5, "tiny": 1e-7, "neg": -0.25, "u": "日本 ✓ é", "none": None, "list": [1, [2, {"x": None}]],
              "big": 12345678901234567890, "bool": False, "empty": {}}
    store.create_run(make_run(inputs=inputs, variables={"v": {"deep": [1.25, "ü", None]}, "w": None}))
    run = store.get_run("run-1")
    assert run.inputs == inputs
    assert run.variables == {"v": {"deep": [1.25, "ü", None]}, "w": None}
    assert isinstance(run.inputs["f"], float) and isinstance(run.inputs["big"], int)


def test_load_returns_the_run_and_only_existing_tasks(store) -> None:
    store.create_run(make_run())
    start(store, "run-1", "a")
    store.resolve_edge("run-1", "b", "a", "ok")  # b exists (PENDING, one edge counted)
    run, tasks = store.load("run-1", ["a", "b", "c", "a"])
    assert run == store.get_run("run-1")
    assert set(tasks) == {"a", "b"}
    assert tasks["a"].status == "RUNNING" and tasks["a"].attempt == 1
    assert tasks["b"].status == "PENDING" and tasks["b"].resolved == frozenset({"a"})
    assert store.load("run-1", []) == (run, {})
    assert store.load("run-2", ["a"]) == (None, {})


def test_list_tasks_lists_the_tasks_of_one_run(store) -> None:
    store.create_run(make_run("run-1"))
    store.create_run(make_run("run-10"))
    assert store.list_tasks("run-1") == {}
    start(store, "run-1", "a")
    start(store, "run-1", "b", nonce="n")
    start(store, "run-10", "a")
    tasks = store.list_tasks("run-1")
    assert set(tasks) == {"a", "b"}
    assert tasks["b"] == task_state(store, "run-1", "b")
    assert tasks["b"].nonce == "n"
    assert set(store.list_tasks("run-10")) == {"a"}
    assert store.list_tasks("run-missing") == {}


def test_read_span_reads_the_items_asked_for_as_written_last(store) -> None:
    store.create_run(make_run("run-1"))
    store.create_run(make_run("run-10"))
    assert store.read_span("run-1", ["b1", "join"]) == {}
    assert store.read_span("run-1", []) == {}
    start(store, "run-1", "b1")
    start(store, "run-1", "b2", nonce="n")
    # Items between the first and the last asked for, of another run, or after the last: not in the answer.
    for key in ("b1@loop.0", "b3", "join:refused", "zz"):
        start(store, "run-1", key)
    start(store, "run-10", "b2")
    store.change_task("run-1", "b1", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=1,
                                                set={"output": {"n": 1}}))
    items = store.read_span("run-1", ["join", "b2", "b1"])
    assert set(items) == {"b1", "b2"}
    assert items["b1"].status == "COMPLETED" and items["b1"].output == {"n": 1}
    assert items["b2"] == task_state(store, "run-1", "b2") and items["b2"].nonce == "n"
    # A write after a read is seen by the next read (what a join's count relies on: statemachine/joins.py).
    store.change_task("run-1", "b2", TaskChange(status="FAILED", from_status=("RUNNING",), attempt=1))
    assert store.read_span("run-1", ["b1", "b2", "join"])["b2"].status == "FAILED"
    assert set(store.read_span("run-10", ["b1", "b2", "join"])) == {"b2"}
    assert store.read_span("run-missing", ["b1", "b2"]) == {}


def test_ended_iterations_counts_the_ended_iteration_items_of_one_loop(store) -> None:
    store.create_run(make_run("run-1"))
    store.create_run(make_run("run-2"))
    assert store.ended_iterations("run-1", "each") == 0

    def end(run_id: str, key: str, status: str) -> None:
        start(store, run_id, key)
        store.change_task(run_id, key, TaskChange(status=status, from_status=("RUNNING",), attempt=1,
                                                  set={"output": {"key": key}}))

    for key, status in (("each.0", "COMPLETED"), ("each.2", "FAILED"), ("each.10", "SKIPPED"),
                        ("each.11", "CANCELLED")):
        end("run-1", key, status)
    start(store, "run-1", "each.1")  # running: not ended
    store.resolve_edge("run-1", "each.3", "x", "ok")  # an item, PENDING
    # Not iterations of `each`: its list and counters, a body task's item, another loop, another run.
    for key in ("each:items:0", "each:done:0", "tick@each.4", "each2.5", "each.x", "eachy.6", "each"):
        end("run-1", key, "COMPLETED")
    end("run-2", "each.7", "COMPLETED")
    assert store.ended_iterations("run-1", "each") == 4
    assert store.ended_iterations("run-1", "each2") == 1
    assert store.ended_iterations("run-2", "each") == 1
    assert store.ended_iterations("run-missing", "each") == 0


def test_finish_run_only_from_running(store) -> None:
    store.create_run(make_run())
    outputs = {"total": 2.5, "names": ["ä", None]}
    assert store.finish_run("run-1", "COMPLETED", outputs, None, "2030-01-01T01:00:00.000Z") is True
    run = store.get_run("run-1")
    assert (run.status, run.outputs, run.error, run.ended_at) == (
        "COMPLETED", outputs, None, "2030-01-01T01:00:00.000Z")
    assert store.finish_run("run-1", "FAILED", {"x": 1}, {"type": "E", "message": "m"},
                            "2030-01-01T02:00:00.000Z") is False
    assert store.get_run("run-1") == run
    with pytest.raises(RunGone):
        store.finish_run("run-missing", "COMPLETED", None, None, "2030-01-01T01:00:00.000Z")
    assert store.get_run("run-missing") is None


def test_finish_run_failed_with_error(store) -> None:
    store.create_run(make_run())
    error = {"type": "TaskFailed", "message": "task 'a': bœm"}
    assert store.finish_run("run-1", "FAILED", None, error, "2030-01-01T01:00:00.000Z") is True
    run = store.get_run("run-1")
    assert (run.status, run.outputs, run.error) == ("FAILED", None, error)


def test_record_sink_done_counts_each_sink_once(store) -> None:
    store.create_run(make_run(sinks_remaining=2))
    run = store.record_sink_done("run-1", "a")
    assert isinstance(run, RunRecord)
    assert (run.run_id, run.status, run.sinks_remaining) == ("run-1", "RUNNING", 1)
    assert store.record_sink_done("run-1", "a").sinks_remaining == 1  # a redelivery: not counted again
    assert store.get_run("run-1").sinks_remaining == 1
    run = store.record_sink_done("run-1", "b")
    assert run.sinks_remaining == 0
    assert run == store.get_run("run-1")
    assert store.record_sink_done("run-1", "b").sinks_remaining == 0
    assert store.record_sink_done("run-1", "a").sinks_remaining == 0


def test_record_failure_is_idempotent_and_keeps_the_first_error(store) -> None:
    store.create_run(make_run())
    first = {"type": "ValueError", "message": "task 'a': first", "n": 1.5}
    store.record_failure("run-1", "a", first)
    store.record_failure("run-1", "a", {"type": "Other", "message": "again"})
    run = store.get_run("run-1")
    assert run.failed_tasks == frozenset({"a"}) and run.error == first
    store.record_failure("run-1", "b", {"type": "KeyError", "message": "task 'b'"})
    run = store.get_run("run-1")
    assert run.failed_tasks == frozenset({"a", "b"})
    assert run.error == first
    assert run.status == "RUNNING"


def test_record_failure_on_a_missing_run_creates_no_run(store) -> None:
    with pytest.raises(RunGone):
        store.record_failure("run-none", "a", {"type": "E", "message": "m"})
    assert store.get_run("run-none") is None
    assert store.load("run-none", ["a"]) == (None, {})


# ------------------------------------------------------------------ change_task: conditions


def test_change_task_from_missing_item(store) -> None:
    store.create_run(make_run())
    rec = store.change_task("run-1", "a", TaskChange(status="READY", from_status=(None, "PENDING"),
                                                     set={"attempt": 1, "wake_at": "2030-01-01T00:00:05.000Z"}))
    assert rec == TaskRecord("a", status="READY", attempt=1, wake_at="2030-01-01T00:00:05.000Z")
    assert task_state(store, "run-1", "a") == rec


def test_change_task_from_none_accepts_a_pending_item(store) -> None:
    store.create_run(make_run())
    store.resolve_edge("run-1", "a", "dep", "ok")  # creates the item, PENDING
    rec = store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=(None,), set={"attempt": 1}))
    assert (rec.status, rec.attempt, rec.resolved, rec.deps_ok) == ("RUNNING", 1, frozenset({"dep"}), 1)


def test_change_task_wrong_status_raises_with_the_current_record(store) -> None:
    store.create_run(make_run())
    current = start(store, "run-1", "a", nonce="n1", output={"x": 1})
    with pytest.raises(ConditionFailed) as caught:
        store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                                   set={"nonce": "n2"}))
    assert caught.value.current == current
    assert caught.value.current.status == "RUNNING"
    with pytest.raises(ConditionFailed) as caught:
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("WAITING", "READY")))
    assert caught.value.current == current
    assert task_state(store, "run-1", "a") == current  # nothing written


def test_change_task_on_missing_item_with_other_status_fails(store) -> None:
    store.create_run(make_run())
    with pytest.raises(LostRace) as caught:
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",)))
    assert caught.value.current == TaskRecord("a")  # a missing item reads as PENDING
    assert task_state(store, "run-1", "a") is None


def test_a_change_for_an_absent_item_applies_only_where_there_is_none(store) -> None:
    # How a carried task's claim counts its one edge (infra/engine/attempts.py): never over an item,
    # not even one that only counts an edge, as resolve_edge leaves it.
    store.create_run(make_run())
    claim = TaskChange(status="RUNNING", from_status=(None,), absent=True,
                       set={"attempt": 1, "resolved": frozenset({"a"}), "deps_ok": 1})
    written = store.change_task("run-1", "b", claim)
    assert (written.status, written.resolved, written.deps_ok) == ("RUNNING", frozenset({"a"}), 1)
    assert task_state(store, "run-1", "b") == written
    with pytest.raises(LostRace):
        store.change_task("run-1", "b", claim)
    store.resolve_edge("run-1", "c", "a", "ok")
    with pytest.raises(LostRace) as caught:
        store.change_task("run-1", "c", TaskChange(status="RUNNING", from_status=(None,), absent=True))
    assert caught.value.current.resolved == frozenset({"a"}) and caught.value.current.status == "PENDING"


def test_a_hint_that_a_task_has_no_item_changes_no_outcome(store) -> None:
    # A fresh claim decided on a load that found no item (infra/engine/attempts.py): DynamoStore writes it
    # as a put first. Where an item has appeared since, the change applies, or is refused, as it would
    # without the hint: a counted edge is kept, a claim already made wins.
    store.create_run(make_run())
    claim = TaskChange(status="RUNNING", from_status=(None, "PENDING"), likely_absent=True,
                       set={"attempt": 1, "started_at": "2030-01-01T00:00:01.000Z"})
    written = store.change_task("run-1", "b", claim)
    assert (written.status, written.attempt, written.started_at) == ("RUNNING", 1, "2030-01-01T00:00:01.000Z")
    assert task_state(store, "run-1", "b") == written
    store.resolve_edge("run-1", "c", "a", "ok")
    over_an_edge = store.change_task("run-1", "c", claim)
    assert (over_an_edge.status, over_an_edge.resolved, over_an_edge.deps_ok) == ("RUNNING", frozenset({"a"}), 1)
    assert task_state(store, "run-1", "c") == over_an_edge
    with pytest.raises(LostRace) as caught:
        store.change_task("run-1", "b", replace(claim, set={"attempt": 2}))
    assert (caught.value.current.status, caught.value.current.attempt) == ("RUNNING", 1)
    assert task_state(store, "run-1", "b") == written


def test_change_task_attempt_must_match(store) -> None:
    store.create_run(make_run())
    store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=(None,), set={"attempt": 2}))
    with pytest.raises(ConditionFailed) as caught:
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=1))
    assert (caught.value.current.status, caught.value.current.attempt) == ("RUNNING", 2)
    with pytest.raises(ConditionFailed):
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=3))
    rec = store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=2))
    assert (rec.status, rec.attempt) == ("COMPLETED", 2)


def test_change_task_attempt_given_on_missing_item_fails(store) -> None:
    store.create_run(make_run())
    with pytest.raises(ConditionFailed):
        store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=(None, "PENDING"), attempt=1))
    assert task_state(store, "run-1", "a") is None


def test_change_task_lease_takeover(store) -> None:
    store.create_run(make_run())
    live = start(store, "run-1", "a", lease_until="2030-01-01T00:10:00.000Z")
    takeover = dict(status="RUNNING", from_status=("RUNNING",), attempt=1,
                    set={"lease_until": "2030-01-01T00:20:00.000Z", "nonce": "new-owner"})
    for now in ("2030-01-01T00:05:00.000Z", "2030-01-01T00:10:00.000Z"):  # the lease is live (or ends now)
        with pytest.raises(ConditionFailed) as caught:
            store.change_task("run-1", "a", TaskChange(**takeover, lease_expired_before=now))
        assert caught.value.current == live
    assert task_state(store, "run-1", "a") == live
    rec = store.change_task("run-1", "a", TaskChange(**takeover, lease_expired_before="2030-01-01T00:10:00.001Z"))
    assert (rec.lease_until, rec.nonce) == ("2030-01-01T00:20:00.000Z", "new-owner")


def test_change_task_lease_takeover_without_a_lease(store) -> None:
    store.create_run(make_run())
    start(store, "run-1", "a")
    rec = store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=("RUNNING",),
                                                     lease_expired_before="2030-01-01T00:00:00.000Z",
                                                     set={"nonce": "took"}))
    assert rec.nonce == "took"


def test_change_task_fields_set_to_none_are_removed(store) -> None:
    store.create_run(make_run())
    start(store, "run-1", "a", lease_until="2030-01-01T00:10:00.000Z", wake_at="2030-01-01T00:20:00.000Z",
          output={"x": 1}, error={"type": "E"}, approval={"title": "t"}, ctx_now="2030-01-01T00:00:00.000Z",
          ctx_seed=7, nonce="n", waiting_for="timer")
    cleared = {"lease_until": None, "wake_at": None, "output": None, "error": None, "approval": None,
               "ctx_now": None, "ctx_seed": None, "nonce": None, "waiting_for": None}
    rec = store.change_task("run-1", "a", TaskChange(status="RETRYING", from_status=("RUNNING",), set=cleared))
    expected = TaskRecord("a", status="RETRYING", attempt=1)
    assert rec == expected
    assert task_state(store, "run-1", "a") == expected
    assert store.list_tasks("run-1")["a"] == expected
    if isinstance(store, DynamoStore):  # removed, not stored as an empty value
        item = store._db.get_item(TableName=RUNS, Key={"pk": {"S": "run-1"}, "sk": {"S": "T#a"}})["Item"]
        assert not set(item) & set(cleared)


def test_change_task_keeps_fields_it_does_not_set(store) -> None:
    store.create_run(make_run())
    store.resolve_edge("run-1", "a", "dep", "skipped")
    start(store, "run-1", "a", started_at="2030-01-01T00:00:00.000Z", ctx_seed=3)
    rec = store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",),
                                                     set={"output": 1}))
    assert rec == TaskRecord("a", status="COMPLETED", attempt=1, output=1, started_at="2030-01-01T00:00:00.000Z",
                             ctx_seed=3, resolved=frozenset({"dep"}), deps_skipped=1)


JSON_VALUES = [
    {"nested": {"list": [1, 2.5, -0.125, 1e-7, 1.0e300, None, True, False, "ünïcødé ✓ 日本 \"q\" \\ \n"],
                "empty": {}, "empty_list": [], "null": None},
     "int": 12345678901234567890, "neg": -3, "zero": 0.0},
    [None, {"a": [{"b": None}]}, "€"],
    "just text ✓",
    "",
    0,
    2.75,
    False,
    True,
    [],
    {},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=lambda v: type(v).__name__)
def test_json_fields_round_trip(store, value) -> None:
    store.create_run(make_run())
    rec = store.change_task("run-1", "a", TaskChange(
        status="COMPLETED", from_status=(None,),
        set={"output": value, "error": {"type": "E", "message": "é", "detail": value},
             "approval": {"request": {"title": "Ok? ✓"}, "decision": {"data": value, "score": 0.5}}}))
    for got in (rec, task_state(store, "run-1", "a"), store.list_tasks("run-1")["a"]):
        assert got.output == value
        assert type(got.output) is type(value)
        assert got.error == {"type": "E", "message": "é", "detail": value}
        assert got.approval == {"request": {"title": "Ok? ✓"}, "decision": {"data": value, "score": 0.5}}


def test_int_fields_round_trip(store) -> None:
    store.create_run(make_run())
    seed = 2**48 - 1
    rec = store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=(None,),
                                                     set={"attempt": 12, "ctx_seed": seed}))
    for got in (rec, task_state(store, "run-1", "a")):
        assert got.attempt == 12 and type(got.attempt) is int
        assert got.ctx_seed == seed and type(got.ctx_seed) is int
    rec = store.change_task("run-1", "a", TaskChange(status="RUNNING", from_status=("RUNNING",), attempt=12,
                                                     set={"ctx_seed": 0}))
    assert rec.ctx_seed == 0 and type(rec.ctx_seed) is int


def test_change_task_returns_a_copy(store) -> None:
    store.create_run(make_run())
    output = {"items": [1, 2]}
    rec = store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=(None,), set={"output": output}))
    output["items"].append(3)
    rec.output["items"].append(4)
    assert task_state(store, "run-1", "a").output == {"items": [1, 2]}


# ------------------------------------------------------------------ change_task: exports


def test_exports_are_written_with_the_task(store) -> None:
    store.create_run(make_run(variables={"counter": 0, "keep": "me"}))
    start(store, "run-1", "a")
    exports = {"counter": 5, "result": {"rows": [1.5, None, "ü"], "ok": True}}
    rec = store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=1,
                                                     set={"output": {"rows": 3}}), exports=exports)
    assert (rec.status, rec.output) == ("COMPLETED", {"rows": 3})
    assert task_state(store, "run-1", "a") == rec
    assert store.get_run("run-1").variables == {"counter": 5, "keep": "me",
                                                "result": {"rows": [1.5, None, "ü"], "ok": True}}


def test_exports_are_not_written_when_the_task_condition_fails(store) -> None:
    store.create_run(make_run(variables={"counter": 0}))
    current = start(store, "run-1", "a", nonce="n")
    with pytest.raises(ConditionFailed) as caught:
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("RUNNING",), attempt=2,
                                                   set={"output": 1}), exports={"counter": 99, "new": 1})
    assert caught.value.current == current
    assert store.get_run("run-1").variables == {"counter": 0}
    assert task_state(store, "run-1", "a") == current
    with pytest.raises(ConditionFailed):
        store.change_task("run-1", "a", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                          exports={"counter": 98})
    assert store.get_run("run-1").variables == {"counter": 0}


def test_exports_to_a_missing_run_write_nothing(store) -> None:
    with pytest.raises(RunGone):
        store.change_task("run-none", "a", TaskChange(status="COMPLETED", from_status=(None,), set={"output": 1}),
                          exports={"v": 1})
    assert task_state(store, "run-none", "a") is None
    assert store.get_run("run-none") is None


# ------------------------------------------------------------------ change_task: token consumption


def test_consume_uses_the_token_with_the_task_change(store) -> None:
    store.create_run(make_run())
    store.put_token(make_token(expires_at=2_000))
    start(store, "run-1", "t")
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=("RUNNING",), attempt=1,
                                               set={"waiting_for": "callback", "nonce": "n"}))
    rec = store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",), attempt=1,
                                                     set={"output": {"cb": 1}, "waiting_for": None}),
                            consume=TokenConsume("tok-1", "req-1", now_epoch=1_999))
    assert (rec.status, rec.output, rec.waiting_for) == ("COMPLETED", {"cb": 1}, None)
    assert task_state(store, "run-1", "t") == rec
    assert store.get_token("tok-1") == make_token(expires_at=2_000, used_by="req-1")


def test_consume_with_exports_writes_all_three(store) -> None:
    store.create_run(make_run(variables={}))
    store.put_token(make_token())
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",), attempt=1),
                      exports={"approved_by": "ann"}, consume=TokenConsume("tok-1", "req-1", now_epoch=10))
    assert task_state(store, "run-1", "t").status == "COMPLETED"
    assert store.get_run("run-1").variables == {"approved_by": "ann"}
    assert store.get_token("tok-1").used_by == "req-1"


def test_consume_a_token_without_expiry(store) -> None:
    store.create_run(make_run())
    store.put_token(make_token(expires_at=None))
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                      consume=TokenConsume("tok-1", "req-1", now_epoch=10**12))
    assert store.get_token("tok-1").used_by == "req-1"


def test_consume_a_used_token_raises_and_leaves_the_task(store) -> None:
    store.create_run(make_run(variables={}))
    store.put_token(make_token())
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    store.change_task("run-1", "t", TaskChange(status="RUNNING", from_status=("WAITING",)),
                      consume=TokenConsume("tok-1", "req-1", now_epoch=10))
    before = task_state(store, "run-1", "t")
    with pytest.raises(TokenUsed):
        store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("RUNNING",),
                                                   set={"output": "second"}),
                          exports={"v": 1}, consume=TokenConsume("tok-1", "req-2", now_epoch=11))
    assert task_state(store, "run-1", "t") == before
    assert store.get_token("tok-1").used_by == "req-1"
    assert store.get_run("run-1").variables == {}


@pytest.mark.parametrize("now_epoch", [2_000, 2_001, 10**10], ids=["at-expiry", "after", "long-after"])
def test_consume_an_expired_token_raises_and_leaves_the_task(store, now_epoch: int) -> None:
    store.create_run(make_run())
    store.put_token(make_token(expires_at=2_000))
    waiting = store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    with pytest.raises(TokenUsed):
        store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",), set={"output": 1}),
                          consume=TokenConsume("tok-1", "req-1", now_epoch=now_epoch))
    assert task_state(store, "run-1", "t") == waiting
    assert store.get_token("tok-1").used_by is None


def test_consume_a_missing_token_raises(store) -> None:
    store.create_run(make_run())
    waiting = store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    with pytest.raises(TokenUsed):
        store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                          consume=TokenConsume("tok-none", "req-1", now_epoch=1))
    assert task_state(store, "run-1", "t") == waiting
    assert store.get_token("tok-none") is None


def test_consume_with_a_failed_task_condition_leaves_the_token_unused(store) -> None:
    store.create_run(make_run())
    store.put_token(make_token())
    done = store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=(None,), set={"attempt": 1}))
    with pytest.raises(ConditionFailed) as caught:
        store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",), attempt=1),
                          consume=TokenConsume("tok-1", "req-1", now_epoch=1))
    assert caught.value.current == done
    assert store.get_token("tok-1").used_by is None
    assert task_state(store, "run-1", "t") == done


def test_task_condition_failure_wins_over_a_used_token(store) -> None:
    store.create_run(make_run())
    store.put_token(make_token())
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                      consume=TokenConsume("tok-1", "req-1", now_epoch=1))
    with pytest.raises(ConditionFailed):  # both conditions fail: the task's is reported
        store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                          consume=TokenConsume("tok-1", "req-2", now_epoch=1))
    assert store.get_token("tok-1").used_by == "req-1"


# ------------------------------------------------------------------ resolve_edge


def test_resolve_edge_counts_each_dependency_once(store) -> None:
    store.create_run(make_run())
    applied, rec = store.resolve_edge("run-1", "t", "a", "ok")
    assert applied is True
    assert rec == TaskRecord("t", status="PENDING", resolved=frozenset({"a"}), deps_ok=1)
    assert task_state(store, "run-1", "t") == rec  # the missing item was created, PENDING

    assert store.resolve_edge("run-1", "t", "b", "failed")[0] is True
    assert store.resolve_edge("run-1", "t", "c", "skipped")[0] is True
    applied, rec = store.resolve_edge("run-1", "t", "d", "ok")
    assert applied is True
    expected = TaskRecord("t", resolved=frozenset("abcd"), deps_ok=2, deps_failed=1, deps_skipped=1)
    assert rec == expected

    for dep, outcome in (("a", "ok"), ("a", "failed"), ("b", "failed"), ("c", "force_skip")):
        applied, current = store.resolve_edge("run-1", "t", dep, outcome)
        assert applied is False
        assert current == expected
    assert task_state(store, "run-1", "t") == expected


def test_resolve_edge_force_skip(store) -> None:
    store.create_run(make_run())
    applied, rec = store.resolve_edge("run-1", "t", "cond", "force_skip")
    assert applied is True
    assert (rec.deps_skipped, rec.forced_skip, rec.deps_ok, rec.deps_failed) == (1, True, 0, 0)
    applied, rec = store.resolve_edge("run-1", "t", "other", "ok")
    assert (rec.deps_skipped, rec.deps_ok, rec.forced_skip) == (1, 1, True)
    applied, again = store.resolve_edge("run-1", "t", "cond", "force_skip")
    assert applied is False and again == rec


def test_resolve_edge_on_a_started_task_keeps_its_state(store) -> None:
    store.create_run(make_run())
    running = start(store, "run-1", "t", nonce="n")
    applied, rec = store.resolve_edge("run-1", "t", "late", "ok")
    assert applied is True
    assert (rec.status, rec.attempt, rec.nonce, rec.deps_ok, rec.resolved) == (
        "RUNNING", 1, "n", 1, frozenset({"late"}))
    assert store.resolve_edge("run-1", "t", "late", "ok") == (False, rec)
    assert running.deps_ok == 0


# ------------------------------------------------------------------ tokens


def test_put_token_never_resets_a_token(store) -> None:
    assert store.get_token("tok-1") is None
    token = make_token(expires_at=5_000, kind="approval", attempt=3)
    store.put_token(token)
    assert store.get_token("tok-1") == token
    store.put_token(make_token(expires_at=9_000, task_id="other"))  # present: no-op
    assert store.get_token("tok-1") == token

    store.create_run(make_run())
    store.change_task("run-1", "t", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 3}))
    store.change_task("run-1", "t", TaskChange(status="COMPLETED", from_status=("WAITING",)),
                      consume=TokenConsume("tok-1", "req-1", now_epoch=1))
    store.put_token(token)  # a redelivered WAITING handler puts the token again
    assert store.get_token("tok-1") == make_token(expires_at=5_000, kind="approval", attempt=3, used_by="req-1")


def test_token_without_expiry_round_trips(store) -> None:
    token = make_token("tok-2", expires_at=None)
    store.put_token(token)
    assert store.get_token("tok-2") == token


# ------------------------------------------------------------------ concurrency (in-memory only)


def _race(n: int, action) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", action(i))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            results[i] = ("error", exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


class _TwoWriters:
    """Two SQLiteStores on one file, each with its own connections and lock, as two processes have:
    the write lock they share is the file's (BEGIN IMMEDIATE). Each call goes to one of them in turn."""

    def __init__(self, path) -> None:
        self._dbs = [Database(path), Database(path)]
        self._stores = [SQLiteStore(db) for db in self._dbs]
        self._turn = itertools.count()

    def __getattr__(self, name: str):
        return getattr(self._stores[next(self._turn) % 2], name)

    def close(self) -> None:
        for db in self._dbs:
            db.close()


@pytest.fixture(params=["memory", "sqlite", "sqlite-two-writers"])
def local_store(request: pytest.FixtureRequest, tmp_path) -> Iterator:
    """The stores whose races are run here (DynamoDB's are moto's, made atomic by linearizable_moto)."""
    if request.param == "memory":
        yield InMemoryStore()
        return
    store = _TwoWriters(tmp_path / "state.db") if request.param == "sqlite-two-writers" else None
    db = Database(tmp_path / "state.db")
    yield store or SQLiteStore(db)
    db.close()
    if store is not None:
        store.close()


def test_local_store_racing_change_task_has_one_winner(local_store) -> None:
    store = local_store
    store.create_run(make_run())
    for round_ in range(20):
        task = f"t{round_}"
        results = _race(16, lambda i: store.change_task(
            "run-1", task, TaskChange(status="RUNNING", from_status=(None, "PENDING"),
                                      set={"attempt": 1, "nonce": f"worker-{i}"})))
        winners = [value for kind, value in results if kind == "ok"]
        losers = [value for kind, value in results if kind == "error"]
        assert len(winners) == 1
        assert len(losers) == 15 and all(isinstance(e, ConditionFailed) for e in losers)
        assert task_state(store, "run-1", task).nonce == winners[0].nonce
        assert all(e.current.nonce == winners[0].nonce for e in losers)


def test_local_store_racing_resolve_edge_and_consume(local_store) -> None:
    store = local_store
    store.create_run(make_run())
    results = _race(16, lambda i: store.resolve_edge("run-1", "t", "dep", "ok"))
    assert sum(1 for _, (applied, _rec) in results if applied) == 1
    assert task_state(store, "run-1", "t").deps_ok == 1

    store.put_token(make_token())
    results = _race(16, lambda i: store.change_task(
        "run-1", f"w{i}", TaskChange(status="COMPLETED", from_status=(None,)),
        consume=TokenConsume("tok-1", f"req-{i}", now_epoch=1)))
    winners = [i for i, (kind, _) in enumerate(results) if kind == "ok"]
    assert len(winners) == 1
    assert all(isinstance(value, TokenUsed) for kind, value in results if kind == "error")
    assert store.get_token("tok-1").used_by == f"req-{winners[0]}"
    assert set(store.list_tasks("run-1")) == {"t", f"w{winners[0]}"}


def test_a_vote_counts_on_its_waiting_request_and_guards_decisions(store) -> None:
    store.create_run(make_run())
    store.put_token(make_token(token_hash="tok-a"))
    store.put_token(make_token(token_hash="tok-b"))
    store.change_task("run-1", "ask", TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))
    assert task_state(store, "run-1", "ask").votes == 0
    store.change_task("run-1", "ask:vote:a", TaskChange(status="COMPLETED", from_status=(None,), set={"output": "a"}),
                      consume=TokenConsume("tok-a", "req-a", now_epoch=10, vote_on=("ask", 1)))
    assert task_state(store, "run-1", "ask").votes == 1
    # A decider that read the request before that vote loses; one that read it after wins.
    with pytest.raises(ConditionFailed) as lost:
        store.change_task("run-1", "ask", TaskChange(status="COMPLETED", from_status=("WAITING",), attempt=1,
                                                     votes=0))
    assert (lost.value.current.status, lost.value.current.votes) == ("WAITING", 1)
    store.change_task("run-1", "ask", TaskChange(status="COMPLETED", from_status=("WAITING",), attempt=1, votes=1))
    # A vote on a request that no longer waits is refused, and nothing of it is written.
    with pytest.raises(RequestClosed):
        store.change_task("run-1", "ask:vote:b", TaskChange(status="COMPLETED", from_status=(None,),
                                                            set={"output": "b"}),
                          consume=TokenConsume("tok-b", "req-b", now_epoch=10, vote_on=("ask", 1)))
    assert task_state(store, "run-1", "ask:vote:b") is None
    assert store.get_token("tok-b").used_by is None
    assert task_state(store, "run-1", "ask").votes == 1


# ------------------------------------------------------------------ refused links (issue #9, item 4)


def _refusal(n: int) -> dict:
    return {"reason": "a used or expired link", "approver": f"a{n}@example.com", "at": f"2030-01-01T00:00:{n:02d}Z"}


def test_record_refusal_counts_all_and_keeps_the_last_few(store) -> None:
    store.create_run(make_run())
    first = store.record_refusal("run-1", "ask:refused", _refusal(0), 5)
    assert (first.status, first.attempt, first.output) == ("COMPLETED", 1, {"count": 1, "last": [_refusal(0)]})
    for n in range(1, 12):
        written = store.record_refusal("run-1", "ask:refused", _refusal(n), 5)
    stored = task_state(store, "run-1", "ask:refused")
    assert stored.status == "COMPLETED" and stored.attempt == 12
    assert stored.output == {"count": 12, "last": [_refusal(n) for n in range(7, 12)]} == written.output
    # One bounded item per task: another task's record is its own, nothing else is written.
    store.record_refusal("run-1", "other:refused", _refusal(0), 5)
    assert set(store.list_tasks("run-1")) == {"ask:refused", "other:refused"}
    assert task_state(store, "run-1", "other:refused").output == {"count": 1, "last": [_refusal(0)]}


def test_record_refusal_with_nothing_kept_still_counts(store) -> None:
    store.create_run(make_run())
    for n in range(3):
        store.record_refusal("run-1", "ask:refused", _refusal(n), 0)
    assert task_state(store, "run-1", "ask:refused").output == {"count": 3, "last": []}


def test_concurrent_refusals_each_count_once(store) -> None:
    from loopline.embedded.concurrency import linearizable_moto

    store.create_run(make_run())
    # moto is made atomic per request, as DynamoDB is (without it moto itself would lose writes).
    with linearizable_moto():
        results = _race(8, lambda i: [store.record_refusal("run-1", "ask:refused", _refusal(i * 10 + k), 5)
                                      for k in range(5)])
    assert all(kind == "ok" for kind, _ in results), results
    stored = task_state(store, "run-1", "ask:refused")
    assert stored.attempt == 40 and stored.output["count"] == 40
    assert len(stored.output["last"]) == 5
    everyone = {_refusal(i * 10 + k)["approver"] for i in range(8) for k in range(5)}
    assert {entry["approver"] for entry in stored.output["last"]} <= everyone
