"""infra/aws/dynamo_store.py: which request a task change takes. A change on no item is a PutItem (cheaper
on moto, the same write on AWS); a change only presumed to be on no item (TaskChange.likely_absent) falls
back to the UpdateItem where an item has appeared. What each stores is tests/component/test_store_contract.py's."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.aws.dynamo_store import DynamoStore
from infra.ports import LostRace, TaskChange
from tests.component.test_store_contract import DEFINITIONS, REGION, RUNS, TOKENS, _create_tables, make_run

CLAIM = TaskChange(status="RUNNING", from_status=(None, "PENDING"), likely_absent=True, set={"attempt": 1})


@pytest.fixture
def store_and_requests(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_tables(client)
        requests: list[str] = []
        client.meta.events.register("before-call.dynamodb", lambda model, **_: requests.append(model.name))
        store = DynamoStore(client, runs_table=RUNS, definitions_table=DEFINITIONS, tokens_table=TOKENS)
        store.create_run(make_run())
        requests.clear()
        yield store, requests


def test_a_change_presumed_on_no_item_is_one_put_where_there_is_none(store_and_requests) -> None:
    store, requests = store_and_requests
    assert store.change_task("run-1", "b", CLAIM).status == "RUNNING"
    assert requests == ["PutItem"]


def test_where_an_item_has_appeared_the_update_decides(store_and_requests) -> None:
    store, requests = store_and_requests
    store.resolve_edge("run-1", "c", "a", "ok")
    requests.clear()
    assert store.change_task("run-1", "c", CLAIM).resolved == frozenset({"a"})  # applied over the edge
    assert requests == ["PutItem", "UpdateItem"]
    requests.clear()
    with pytest.raises(LostRace):  # and refused over a claim, as without the hint
        store.change_task("run-1", "c", CLAIM)
    assert requests == ["PutItem", "UpdateItem"]


def test_without_the_hint_a_change_is_one_update(store_and_requests) -> None:
    store, requests = store_and_requests
    store.change_task("run-1", "b", TaskChange(status="RUNNING", from_status=(None, "PENDING"), set={"attempt": 1}))
    assert requests == ["UpdateItem"]
