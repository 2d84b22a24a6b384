"""The History contract, run against every adapter: InMemoryHistory, SQLiteHistory and DynamoHistory (on moto);
and the stores' part of it: the note and the expiry they write with a run's change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from infra.aws.dynamo_history import DynamoHistory
from infra.ports import RunRecord, StoreError
from loopline.memory.history import InMemoryHistory
from loopline.sqlite.db import Database
from loopline.sqlite.history import SQLiteHistory
from statemachine.events import Cause, CauseKind
from statemachine.history import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    EntryKind,
    HistoryEntry,
    Retention,
    decode_action,
)
from statemachine.state import LastChange

REGION = "us-east-1"
TABLE = "loopline-history"


def _create_table(client, name: str = TABLE) -> None:
    client.create_table(  # as template.yaml's HistoryTable
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])


@pytest.fixture
def moto_client(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        yield client


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def history(request: pytest.FixtureRequest, tmp_path):
    if request.param == "memory":
        return InMemoryHistory()
    if request.param == "sqlite":
        return SQLiteHistory(Database(tmp_path / "state.db"))
    return DynamoHistory(request.getfixturevalue("moto_client"), TABLE, Retention(30))


def entry(seq: int, run: str = "r1", at: str = "2026-01-01T00:00:00.000Z", status: str = "RUNNING",
          item: str = "b") -> HistoryEntry:
    return HistoryEntry(run, at, str(seq), EntryKind.TASK, item, status, None, 1, f"change {seq}",
                        Cause(CauseKind.MESSAGE, "exec", f"{item} attempt 1"))


def action(request_id: str, what: AuditAction, actor: str = "alice", at: str = "2026-01-01T00:00:00.000Z",
           reason: str = "") -> AuditEntry:
    return AuditEntry(at, request_id, what, actor, "10.0.0.1", "curl/8", "r1", reason, 202)


def test_an_entry_is_appended_once(history):
    assert history.append(entry(1)) is True
    assert history.append(entry(1)) is False  # the same change record delivered again
    assert [e.seq for e in history.of_run("r1").items] == ["1"]


def test_a_run_reads_in_time_then_sequence_order_with_its_own_entries_only(history):
    for e in (entry(10, at="2026-01-01T00:00:02.000Z"), entry(9), entry(2, at="2026-01-01T00:00:01.000Z"),
              entry(11), entry(5, run="other")):
        history.append(e)
    page = history.of_run("r1")
    assert [e.seq for e in page.items] == ["9", "11", "2", "10"] and page.cursor is None
    assert page.items[0] == entry(9)  # every field kept


def test_pages_follow_the_cursor_to_the_end(history):
    for seq in range(1, 8):
        history.append(entry(seq))
    seen, cursor = [], None
    while True:
        page = history.of_run("r1", cursor, limit=3)
        seen += [e.seq for e in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == [str(s) for s in range(1, 8)]
    assert history.of_run("nothing").items == []


def test_the_audit_log_filters_by_actor_action_and_time(history):
    history.record_action(action("q1", AuditAction.START, at="2026-01-01T00:00:00.000Z"))
    history.record_action(action("q2", AuditAction.CANCEL, reason="wrong input", at="2026-01-02T00:00:00.000Z"))
    history.record_action(action("q3", AuditAction.CANCEL, actor="bob", at="2026-01-03T00:00:00.000Z"))
    assert history.record_action(action("q3", AuditAction.CANCEL, actor="bob", at="2026-01-03T00:00:00.000Z")) \
        is False  # the same request kept once
    assert [a.request_id for a in history.actions().items] == ["q1", "q2", "q3"]
    assert [a.request_id for a in history.actions(actor="alice").items] == ["q1", "q2"]
    assert [a.request_id for a in history.actions(action=AuditAction.CANCEL).items] == ["q2", "q3"]
    assert [a.request_id for a in history.actions(since="2026-01-02T00:00:00.000Z").items] == ["q2", "q3"]
    (cancel,) = history.actions(actor="alice", action=AuditAction.CANCEL).items
    assert cancel.reason == "wrong input" and cancel.source_ip == "10.0.0.1"


def test_audit_pages_follow_the_cursor_under_a_filter(history):
    for n in range(6):
        history.record_action(action(f"q{n}", AuditAction.PAUSE if n % 2 else AuditAction.RESUME,
                                     at=f"2026-01-01T00:00:0{n}.000Z"))
    first = history.actions(action=AuditAction.PAUSE, limit=2)
    assert [a.request_id for a in first.items] == ["q1", "q3"] and first.cursor is not None
    rest = history.actions(action=AuditAction.PAUSE, cursor=first.cursor, limit=2)
    assert [a.request_id for a in rest.items] == ["q5"] and rest.cursor is None


def test_the_audit_log_filters_by_end_time_workflow_run_and_several_actions(history):
    days = {f"q{n}": f"2026-01-0{n}T00:00:00.000Z" for n in range(1, 7)}
    kept = [("q1", AuditAction.START, "r1", "pay"), ("q2", AuditAction.CANCEL, "r1", "pay"),
            ("q3", AuditAction.REGISTER, "", "pay"), ("q4", AuditAction.PAUSE, "r2", "ship"),
            ("q5", AuditAction.CANCEL, "r2", "ship"), ("q6", AuditAction.START, "", "")]
    for request_id, what, run_id, workflow_id in kept:
        history.record_action(replace(action(request_id, what, at=days[request_id]), run_id=run_id,
                                      workflow_id=workflow_id))

    def ids(**query) -> list[str]:
        return [a.request_id for a in history.actions(**query).items]
    assert ids(until="2026-01-03T00:00:00.000Z") == ["q1", "q2"]  # exclusive: q3 is at that very time
    assert ids(since="2026-01-02T00:00:00.000Z", until="2026-01-05T00:00:00.000Z") == ["q2", "q3", "q4"]
    assert ids(workflow_id="pay") == ["q1", "q2", "q3"] and ids(workflow_id="nope") == []
    assert ids(run_id="r2") == ["q4", "q5"]
    assert ids(action=[AuditAction.START, AuditAction.CANCEL]) == ["q1", "q2", "q5", "q6"]
    assert ids(action=[AuditAction.CANCEL, AuditAction.PAUSE], workflow_id="ship", until="2026-01-05T00:00:00.000Z") \
        == ["q4"]
    assert ids(action=[]) == ids() == [f"q{n}" for n in range(1, 7)]  # no action named: every action
    (one,) = history.actions(run_id="r1", action=AuditAction.CANCEL).items
    assert (one.run_id, one.workflow_id) == ("r1", "pay")


def test_audit_pages_stop_at_the_end_time_under_a_filter(history):
    for n in range(8):
        history.record_action(action(f"q{n}", AuditAction.PAUSE if n % 2 else AuditAction.RESUME,
                                     at=f"2026-01-01T00:00:0{n}.000Z"))
    first = history.actions(action=[AuditAction.PAUSE], until="2026-01-01T00:00:06.000Z", limit=1)
    assert [a.request_id for a in first.items] == ["q1"] and first.cursor is not None
    rest = history.actions(action=[AuditAction.PAUSE], until="2026-01-01T00:00:06.000Z", cursor=first.cursor,
                           limit=2)
    assert [a.request_id for a in rest.items] == ["q3", "q5"] and rest.cursor is None  # q7 is past the end


def test_an_audit_entry_kept_before_runs_and_workflows_were_reads_with_neither():
    old = {"at": "2026-01-01T00:00:00.000Z", "request_id": "q1", "action": "start", "actor": "a", "source_ip": "",
           "user_agent": "", "target": "r1", "reason": "", "outcome": 201}
    entry = decode_action(old)
    assert (entry.run_id, entry.workflow_id) == ("", "")
    assert AuditQuery(run_id="r1").matches(entry) is False and AuditQuery().matches(entry)


def test_dynamodb_entries_expire_after_the_retention(moto_client):
    """moto never deletes an expired item: what is checked is the TTL attribute's value."""
    DynamoHistory(moto_client, TABLE, Retention(7)).append(entry(1, at="2026-01-01T00:00:00.000Z"))
    (item,) = moto_client.scan(TableName=TABLE)["Items"]
    assert int(item["ttl"]["N"]) == 1767225600 + 7 * 86400


def test_dynamodb_entries_of_a_workflow_with_its_own_retention_expire_after_it(moto_client):
    """The recorder passes the run's workflow's retention_policy (infra/history.py): it replaces the deployment's."""
    history = DynamoHistory(moto_client, TABLE, Retention(7))
    history.append(entry(1, at="2026-01-01T00:00:00.000Z"), Retention(0.5))
    history.append(entry(2, run="r2", at="2026-01-01T00:00:00.000Z"), None)
    ttl = {i["pk"]["S"]: int(i["ttl"]["N"]) for i in moto_client.scan(TableName=TABLE)["Items"]}
    assert ttl == {"RUN#r1": 1767225600 + 12 * 3600, "RUN#r2": 1767225600 + 7 * 86400}
    DynamoHistory(moto_client, TABLE, Retention(0)).append(entry(2))
    kept = [i for i in moto_client.scan(TableName=TABLE)["Items"] if "ttl" not in i]
    assert len(kept) == 1  # retention 0: no TTL, kept for ever


def test_dynamodb_errors_are_store_errors_from_the_aws_error(moto_client):
    missing = DynamoHistory(moto_client, "no-such-table", Retention(30))
    with pytest.raises(StoreError) as raised:
        missing.append(entry(1))
    assert raised.value.__cause__ is not None


# ------------------------------------------------- the stores' part: a run's note and expiry


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path):
    from loopline.memory.store import InMemoryStore
    from loopline.sqlite.store import SQLiteStore
    from tests.component.test_store_contract import DEFINITIONS, RUNS, TOKENS, _create_tables

    if request.param == "memory":
        return InMemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(Database(tmp_path / "state.db"))
    from infra.aws.dynamo_store import DynamoStore

    client = request.getfixturevalue("moto_client")
    _create_tables(client)
    return DynamoStore(client, runs_table=RUNS, definitions_table=DEFINITIONS, tokens_table=TOKENS)


def test_a_finished_run_carries_its_note_and_expiry_and_a_redrive_clears_the_expiry(store):
    started = LastChange(reason="started", at="t0", cause_kind="request", cause_name="start", cause_subject="w")
    store.create_run(RunRecord("r1", "h", "w", last_change=started))
    assert store.get_run("r1").last_change == started
    failed = LastChange(reason="failed: Boom", at="t1", cause_kind="", cause_name="", cause_subject="")
    assert store.finish_run("r1", "FAILED", None, {"type": "Boom"}, "t1", note=failed, expires=1_800_000_000)
    run = store.get_run("r1")
    assert (run.status, run.last_change, run.ttl) == ("FAILED", failed, 1_800_000_000)
    again = LastChange(reason="redrive 1", at="t2", cause_kind="", cause_name="", cause_subject="")
    applied, reopened = store.reopen_run("r1", 1, [], 1, "t2", note=again)
    assert applied and (reopened.status, reopened.ttl, reopened.last_change) == ("RUNNING", None, again)
    assert store.set_run_status("r1", "PAUSED", "RUNNING")  # no note: the stored one stays
    assert store.get_run("r1").last_change == again
