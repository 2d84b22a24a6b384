"""Every conditional write's outcomes (applied / lost the race / gone), identical on every store.

infra/ports.py says how each outcome is reported; these tests hold each store (memory, DynamoDB on
moto, with claims) to it, so nothing is swallowed on one store and raised on another. On DynamoDB a
domain error is raised from the AWS error it stands for.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra import ports
from infra.aws.dynamo_calls import Cancelled, transact
from infra.aws.dynamo_items import task_from_item
from infra.aws.dynamo_store import DynamoStore
from tests.component.test_store_contract import RUNS, make_run, make_token, store, task_state  # noqa: F401 - the fixture

NOW = "2030-01-02T00:00:00.000Z"
ERROR = {"type": "E", "message": "m"}
DONE = ports.TaskChange(status="COMPLETED", from_status=(None,), set={"output": 1})


def from_aws(store, raised: BaseException) -> None:  # noqa: F811 - the fixture's name
    """On DynamoDB the domain error is raised from the AWS error, never in place of it."""
    if isinstance(store, DynamoStore):
        assert isinstance(raised.__cause__, ClientError), repr(raised.__cause__)


# ------------------------------------------------------------------ gone: a run with no item

GONE = {
    "finish_run": lambda s: s.finish_run("run-x", "COMPLETED", None, None, NOW),
    "begin_end": lambda s: s.begin_end("run-x", [], "RUNNING"),
    "set_run_status": lambda s: s.set_run_status("run-x", "PAUSED", expected="RUNNING"),
    "halt_run": lambda s: s.halt_run("run-x", "$cancel", ERROR),
    "record_sink_done": lambda s: s.record_sink_done("run-x", "a"),
    "record_failure": lambda s: s.record_failure("run-x", "a", ERROR),
    "reset_task": lambda s: s.reset_task("run-x", "a", 1),
    "reopen_run": lambda s: s.reopen_run("run-x", 1, [], 1, NOW),
    "migrate_task": lambda s: s.migrate_task("run-x", ports.TaskRecord("a", redrive=1), 1, "hash-1", None),
    "switch_plan": lambda s: s.switch_plan("run-x", 1, "hash-1", "hash-2", {}, {}, [], 1),
    "pause_to_migrate": lambda s: s.pause_to_migrate("run-x", 1, "hash-1"),
    "change_task+exports": lambda s: s.change_task("run-x", "a", DONE, exports={"v": 1}),
}


@pytest.mark.parametrize("write", GONE.values(), ids=GONE.keys())
def test_a_write_on_a_missing_run_raises_run_gone_and_writes_nothing(store, write) -> None:  # noqa: F811
    store.create_run(make_run())  # another run exists: only run-x is missing
    with pytest.raises(ports.RunGone) as gone:
        write(store)
    assert gone.value.run_id == "run-x" and gone.value.current is None
    assert isinstance(gone.value, ports.ConditionFailed)  # callers that catch ports.ConditionFailed keep working
    from_aws(store, gone.value)
    assert store.get_run("run-x") is None and store.list_tasks("run-x") == {}


# ------------------------------------------------------------------ applied, then lost the race


def test_put_plan_and_put_token_say_whether_they_wrote(store) -> None:  # noqa: F811
    assert (store.put_plan("h", "{}"), store.put_plan("h", "{}")) == (True, False)
    assert (store.put_token(make_token()), store.put_token(make_token(task_id="other"))) == (True, False)
    assert store.get_token("tok-1") == make_token()


def test_create_run_is_written_once(store) -> None:  # noqa: F811
    first = store.create_run(make_run())
    assert isinstance(first, ports.Written) and first == (True, make_run())
    assert store.create_run(make_run(workflow_id="other")) == ports.Written(False, make_run())


def test_finish_run_applies_once(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.finish_run("run-1", "COMPLETED", {"x": 1}, None, NOW) is True
    assert store.finish_run("run-1", "FAILED", None, ERROR, NOW) is False  # lost: the first end stands
    assert store.get_run("run-1").status == "COMPLETED"


def test_a_paused_run_does_not_finish(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.set_run_status("run-1", "PAUSED", expected="RUNNING") is True
    assert store.finish_run("run-1", "COMPLETED", None, None, NOW) is False
    assert store.get_run("run-1").status == "PAUSED"


def test_set_run_status_applies_only_from_the_expected_status(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.set_run_status("run-1", "PAUSED", expected="RUNNING") is True
    assert store.set_run_status("run-1", "PAUSED", expected="RUNNING") is False  # a second pause
    assert store.get_run("run-1").status == "PAUSED"
    assert store.set_run_status("run-1", "RUNNING", expected="PAUSED") is True
    assert store.get_run("run-1").status == "RUNNING"


def test_begin_end_fixes_the_end_steps_once_and_returns_the_stored_run(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.record_failure("run-1", "a", ERROR)
    run = store.begin_end("run-1", [["undo_a", "a"]], "COMPENSATING")
    assert isinstance(run, ports.RunRecord) and (run.status, run.end_comps) == ("COMPENSATING", [["undo_a", "a"]])
    assert run == store.get_run("run-1")
    again = store.begin_end("run-1", [], "RUNNING")  # lost: the steps fixed first stand
    assert again == run == store.get_run("run-1")


def test_halt_run_always_applies_and_keeps_the_first_error(store) -> None:  # noqa: F811
    store.create_run(make_run())
    run = store.halt_run("run-1", "$timeout", {"type": "Timeout", "message": "late"})
    assert (run.halt, run.cancelled, run.failed_tasks, run.error) == (
        True, False, frozenset({"$timeout"}), {"type": "Timeout", "message": "late"})
    run = store.halt_run("run-1", "$cancel", ERROR)
    assert (run.halt, run.cancelled, run.failed_tasks, run.error) == (
        True, True, frozenset({"$timeout", "$cancel"}), {"type": "Timeout", "message": "late"})
    assert run == store.get_run("run-1")


def test_change_task_lost_race_is_raised_with_the_winner(store) -> None:  # noqa: F811
    store.create_run(make_run())
    winner = store.change_task("run-1", "a", ports.TaskChange(status="RUNNING", from_status=(None,),
                                                        set={"attempt": 1, "nonce": "first"}))
    for exports in (None, {"v": 1}):  # one update, or a transaction with the run's variables
        with pytest.raises(ports.LostRace) as lost:
            store.change_task("run-1", "a", ports.TaskChange(status="RUNNING", from_status=(None,),
                                                       set={"attempt": 1, "nonce": "second"}), exports=exports)
        assert lost.value.current == winner
        from_aws(store, lost.value)
    assert task_state(store, "run-1", "a") == winner and store.get_run("run-1").variables == {"counter": 0}


def test_resolve_edge_says_whether_it_counted(store) -> None:  # noqa: F811
    store.create_run(make_run())
    first = store.resolve_edge("run-1", "t", "a", "ok")
    assert isinstance(first, ports.Written) and first.applied and first.record.deps_ok == 1
    assert store.resolve_edge("run-1", "t", "a", "ok") == ports.Written(False, first.record)


# ------------------------------------------------------------------ several conditions fail at once


def _waiting(store, task: str = "t") -> None:  # noqa: F811
    store.change_task("run-1", task, ports.TaskChange(status="WAITING", from_status=(None,), set={"attempt": 1}))


def test_a_missing_run_wins_over_a_used_token(store) -> None:  # noqa: F811
    store.put_token(make_token(used_by="req-0"))
    with pytest.raises(ports.RunGone) as gone:
        store.change_task("run-x", "t", DONE, exports={"v": 1}, consume=ports.TokenConsume("tok-1", "req-1", 1))
    from_aws(store, gone.value)
    assert task_state(store, "run-x", "t") is None


def test_a_used_token_wins_over_a_closed_request(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.put_token(make_token(used_by="req-0"))
    store.change_task("run-1", "ask", ports.TaskChange(status="COMPLETED", from_status=(None,), set={"attempt": 1}))
    with pytest.raises(ports.TokenUsed) as used:
        store.change_task("run-1", "ask:vote:a", DONE,
                          consume=ports.TokenConsume("tok-1", "req-1", 1, vote_on=("ask", 1)))
    from_aws(store, used.value)
    assert task_state(store, "run-1", "ask:vote:a") is None


def test_a_closed_request_alone_is_reported_as_such(store) -> None:  # noqa: F811
    # The vote's reason is the third of the transaction's: matched by item, not read by position.
    store.create_run(make_run())
    store.put_token(make_token())
    _waiting(store, "ask")
    with pytest.raises(ports.RequestClosed) as closed:
        store.change_task("run-1", "ask:vote:a", DONE, exports={"v": 1},
                          consume=ports.TokenConsume("tok-1", "req-1", 1, vote_on=("ask", 2)))  # another attempt's
    from_aws(store, closed.value)
    assert store.get_token("tok-1").used_by is None and store.get_run("run-1").variables == {"counter": 0}


def test_a_used_token_alone_is_reported_as_such_with_exports_and_a_vote(store) -> None:  # noqa: F811
    store.create_run(make_run())
    store.put_token(make_token(expires_at=5))
    _waiting(store, "ask")
    with pytest.raises(ports.TokenUsed):
        store.change_task("run-1", "ask:vote:a", DONE, exports={"v": 1},
                          consume=ports.TokenConsume("tok-1", "req-1", 5, vote_on=("ask", 1)))  # expired at 5
    assert task_state(store, "run-1", "ask").votes == 0 and store.get_run("run-1").variables == {"counter": 0}


def test_reset_task_lost_race_on_the_task_or_on_the_run(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.reset_task("run-1", "a", 1) is False  # the run is RUNNING (the run's condition)
    store.finish_run("run-1", "FAILED", None, ERROR, NOW)
    assert store.reset_task("run-1", "a", 1) is True
    assert store.reset_task("run-1", "a", 1) is False  # stamped already (the task's condition)
    assert task_state(store, "run-1", "a") == ports.TaskRecord("a", redrive=1)


def test_reopen_run_lost_race_returns_the_stored_run(store) -> None:  # noqa: F811
    store.create_run(make_run())
    assert store.reopen_run("run-1", 1, [], 1, NOW) == ports.Written(False, store.get_run("run-1"))


# ------------------------------------------------------------------ every field of a task


def test_every_task_field_round_trips(store) -> None:  # noqa: F811
    store.create_run(make_run())
    full = ports.TaskRecord(
        "a", status="WAITING", attempt=3, output={"o": [1, None]}, error=ERROR, started_at="s", ended_at="e",
        lease_until="l", ctx_now="n", ctx_seed=2**40, wake_at="w", nonce="x", waiting_for="approval",
        approval={"title": "t"}, role_ctx={"role": "handler"}, catch={"state": "pending"}, loop_state={"total": 2},
        child_run="c", child_plan="p", child_inputs={"i": 1}, parked=True, redrive=2, links_epoch=1, votes=4,
        token_hash="h", printed="out")
    fields = {name: getattr(full, name) for name in ports.TaskRecord.__dataclass_fields__
              if name not in ("task_id", "status", "resolved", "deps_ok", "deps_failed", "deps_skipped",
                              "forced_skip")}
    store.resolve_edge("run-1", "a", "dep", "force_skip")  # resolved, the counters and forced_skip
    written = store.change_task("run-1", "a", ports.TaskChange(status="WAITING", from_status=(None,), set=fields))
    expected = ports.TaskRecord(**{**full.__dict__, "resolved": frozenset({"dep"}), "deps_skipped": 1,
                             "forced_skip": True})
    assert written == expected == task_state(store, "run-1", "a") == store.list_tasks("run-1")["a"]
    assert {name: type(value) for name, value in task_state(store, "run-1", "a").__dict__.items()} == {
        name: type(value) for name, value in expected.__dict__.items()}


# ------------------------------------------------------------------ DynamoDB's cancellation reasons


def test_each_cancellation_reason_is_matched_to_its_item(store) -> None:  # noqa: F811
    """DynamoDB (and moto) gives one reason per item of a cancelled transaction, in their order."""
    if not isinstance(store, DynamoStore):
        pytest.skip("a DynamoDB transaction's cancellation reasons")
    store.create_run(make_run("run-1"))
    store.create_run(make_run("run-2"))
    running = store.change_task("run-1", "a", ports.TaskChange(status="RUNNING", from_status=(None,)))

    def check(run_id: str, sk: str, condition: str, **extra) -> dict:
        return {"ConditionCheck": {"TableName": RUNS, "Key": {"pk": {"S": run_id}, "sk": {"S": sk}},
                                   "ConditionExpression": condition,
                                   "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **extra}}

    with pytest.raises(Cancelled) as cancelled:
        transact(store._db, [
            ("first", check("run-1", "RUN", "attribute_exists(pk)")),
            ("gone", check("run-x", "RUN", "attribute_exists(pk)")),
            ("second", check("run-2", "RUN", "attribute_exists(pk)")),
            ("stale", check("run-1", "T#a", "#st = :done", ExpressionAttributeNames={"#st": "status"},
                            ExpressionAttributeValues={":done": {"S": "COMPLETED"}}))])
    assert set(cancelled.value.failed) == {"gone", "stale"}
    assert cancelled.value.failed["gone"] is None  # no item: nothing to return
    assert task_from_item(store._json, "a", cancelled.value.failed["stale"]) == running
    assert isinstance(cancelled.value.error, ClientError)
