"""The TaskContext port (infra/task_context.py), run against every StateStore: a task item's metric
labels are its run's workflow and its node's type (a block's kind), read from the run and its plan,
each once per process; what is not there gives empty labels, a storage failure is raised."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.aws.dynamo_store import DynamoStore
from infra.ports import StoreError, TaskLabels
from infra.task_context import StoreTaskContext
from statemachine.history import RunSeen
from tests.component.test_store_contract import DEFINITIONS, REGION, RUNS, TOKENS, _create_tables, make_run
from tests.component.test_store_contract import store as store  # noqa: F401 (the fixture: every store)
from tests.conftest import compile_yaml

FLOW = """
workflow:
  metadata: {id: orders, version: 1.0.0}
  tasks:
    - {id: fetch, type: http, config: {url: "https://example.com"}}
    - {id: after, type: python, depends_on: [each], config: {code: "result = 1"}}
  control_flow:
    loops:
      - id: each
        items: "${inputs.items}"
        iterator: n
        depends_on: [fetch]
        tasks:
          - {id: square, type: python, config: {code: "result = n * n"}}
"""


def _stored(store) -> StoreTaskContext:  # noqa: F811 (the fixture's name)
    plan = compile_yaml(FLOW)
    store.put_plan(plan.hash, plan.to_json())
    store.create_run(make_run("run-1", plan_hash=plan.hash, workflow_id="orders"))
    return StoreTaskContext(store)


def test_a_task_is_labelled_with_its_runs_workflow_and_its_type(store) -> None:  # noqa: F811
    context = _stored(store)
    assert context.of("run-1", "fetch") == TaskLabels("orders", "http")
    assert context.of("run-1", "after") == TaskLabels("orders", "python")
    assert context.of("run-1", "square@each.2") == TaskLabels("orders", "python")  # a body task's run
    assert context.of("run-1", "each") == TaskLabels("orders", "loop")  # a block: its kind
    assert context.of("run-1", "each.2") == TaskLabels("orders", "")  # an iteration is no node


def test_what_is_not_stored_gives_the_labels_there_are(store) -> None:  # noqa: F811
    context = _stored(store)
    assert context.of("no-such-run", "fetch") == TaskLabels()
    store.create_run(make_run("run-2", plan_hash="no-such-plan", workflow_id="orders"))
    assert context.of("run-2", "fetch") == TaskLabels("orders", "")
    store.put_plan("unreadable", '{"not": "a plan"}')
    store.create_run(make_run("run-3", plan_hash="unreadable", workflow_id="orders"))
    assert context.of("run-3", "fetch") == TaskLabels("orders", "")


def test_a_run_not_there_yet_is_asked_again(store) -> None:  # noqa: F811
    context = _stored(store)
    assert context.of("run-4", "fetch") == TaskLabels()
    store.create_run(make_run("run-4", plan_hash=compile_yaml(FLOW).hash, workflow_id="orders"))
    assert context.of("run-4", "fetch") == TaskLabels("orders", "http")


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch):
    """A DynamoStore on moto, and the names of the DynamoDB operations its client made."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_tables(client)
        made: list[str] = []
        client.meta.events.register("before-call.dynamodb", lambda model, **_: made.append(model.name))
        yield DynamoStore(client, runs_table=RUNS, definitions_table=DEFINITIONS, tokens_table=TOKENS), made


def test_each_run_and_each_plan_is_read_once(dynamo) -> None:
    store, made = dynamo
    context = _stored(store)
    plan_hash = compile_yaml(FLOW).hash
    store.create_run(make_run("run-2", plan_hash=plan_hash, workflow_id="orders"))
    made.clear()
    for key in ("fetch", "after", "each", "square@each.0", "square@each.1", "each.1"):
        context.of("run-1", key)
    assert made == ["GetItem", "GetItem"]  # the run, then its plan
    context.of("run-2", "fetch")
    assert made == ["GetItem", "GetItem", "GetItem"]  # another run of the same plan: the run only
    context.of("run-1", "after")
    assert len(made) == 3


def test_a_run_whose_item_the_consumer_saw_is_not_read_back(dynamo) -> None:
    store, made = dynamo
    context = _stored(store)
    plan = compile_yaml(FLOW)
    made.clear()
    context.saw(RunSeen("run-1", "orders", plan.hash))  # the run's start, as the stream carried it
    assert context.of("run-1", "fetch") == TaskLabels("orders", "http")
    assert context.retention("run-1") is None
    assert made == ["GetItem"]  # the plan only
    moved = compile_yaml(FLOW.replace("type: http, config: {url: \"https://example.com\"}",
                                      "type: python, config: {code: \"result = 0\"}"))
    store.put_plan(moved.hash, moved.to_json())
    made.clear()
    context.saw(RunSeen("run-1", "orders", moved.hash))  # a migration's change of the run's item
    assert context.of("run-1", "fetch") == TaskLabels("orders", "python")
    assert made == ["GetItem"]  # the new plan; never the run


def test_a_storage_failure_is_raised_so_the_record_is_retried(dynamo) -> None:
    store, _ = dynamo
    context = StoreTaskContext(DynamoStore(store._db, runs_table="no-such-table", definitions_table=DEFINITIONS,
                                           tokens_table=TOKENS))
    with pytest.raises(StoreError):
        context.of("run-1", "fetch")


def test_the_caches_are_bounded(dynamo) -> None:
    store, made = dynamo
    plan = compile_yaml(FLOW)
    store.put_plan(plan.hash, plan.to_json())
    for n in range(3):
        store.create_run(make_run(f"run-{n}", plan_hash=plan.hash, workflow_id="orders"))
    context = StoreTaskContext(store, runs_kept=2, plans_kept=1)
    made.clear()
    for n in (0, 1, 2, 0):  # run-0 was dropped for run-2: read again
        context.of(f"run-{n}", "fetch")
    assert made.count("GetItem") == 5  # four runs and one plan
