"""Issue #9 item 17: each function's role grants what its code calls and no more, and the embedded
stack holds every handler to it (loopline/embedded/iam.py), so each e2e test also proves the grants suffice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from infra import wiring
from loopline.embedded.iam import Policy
from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
ENGINE_FUNCTIONS = ("ApiFunction", "ConsoleFunction", "WorkerFunction", "DeadLetterFunction")


@pytest.fixture(scope="module")
def stacks():
    default = EmbeddedAws()
    policies = {name: Policy(spec.policy) for name, spec in default.stack.functions.items()}
    physical, account = dict(default.stack.physical), default.stack.account
    default.stop()
    chosen = EmbeddedAws(parameters={
        "SmsEnabled": "true",
        "BedrockModelArns": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"})
    worker = Policy(chosen.stack.functions["WorkerFunction"].policy)
    chosen.stop()
    return policies, worker, physical, account


def _table(account: str, name: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{account}:table/{name}"


def test_sms_and_bedrock_are_granted_only_when_the_deployment_asks(stacks):
    policies, chosen, _, _ = stacks
    model = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    for policy in policies.values():
        assert not policy.allows("sns:Publish", "*")
        assert not policy.allows("bedrock:InvokeModel", model)
    assert chosen.allows("sns:Publish", "*") and chosen.allows("bedrock:InvokeModel", model)
    assert not chosen.allows("bedrock:InvokeModel", model.replace("haiku", "opus"))


def test_no_function_may_delete_or_batch_write_an_item(stacks):
    policies, _, physical, account = stacks
    for name, policy in policies.items():
        for table in ("DefinitionsTable", "RunsTable", "TokensTable"):
            arn = _table(account, physical[table])
            for action in ("DeleteItem", "BatchWriteItem", "DeleteTable", "UpdateTable", "PartiQLDelete"):
                assert not policy.allows(f"dynamodb:{action}", arn), (name, action, table)


def test_the_dead_letter_function_cannot_touch_tokens_or_write_definitions(stacks):
    policies, _, physical, account = stacks
    dead = policies["DeadLetterFunction"]
    assert not any(dead.allows(f"dynamodb:{a}", _table(account, physical["TokensTable"]))
                   for a in ("GetItem", "PutItem", "UpdateItem", "Scan"))
    assert not dead.allows("dynamodb:PutItem", _table(account, physical["DefinitionsTable"]))
    assert not policies["WorkerFunction"].allows("dynamodb:PutItem", _table(account, physical["DefinitionsTable"]))


def test_the_console_reads_and_acts_on_runs_but_registers_no_workflow(stacks):
    policies, _, physical, account = stacks
    console = policies["ConsoleFunction"]
    assert not console.allows("dynamodb:PutItem", _table(account, physical["DefinitionsTable"]))
    assert console.allows("dynamodb:UpdateItem", _table(account, physical["DefinitionsTable"]))  # deprecate
    assert console.allows("dynamodb:UpdateItem", _table(account, physical["RunsTable"]))  # cancel, pause, ...
    assert console.allows("dynamodb:Query", _table(account, physical["RunsTable"]) + "/index/ByStatus")
    assert not console.allows("dynamodb:Scan", _table(account, physical["RunsTable"]))  # the runs list never scans


def test_the_history_function_only_reads_a_run_and_a_plan_of_the_engines(stacks):
    """It labels task metrics from the run's and the plan's items (docs/metrics.md): GetItem on those
    two tables and payloads/ (a large plan), nothing it could change a run with, no token, no listing."""
    policies, _, physical, account = stacks
    history = policies["HistoryFunction"]
    runs, definitions = _table(account, physical["RunsTable"]), _table(account, physical["DefinitionsTable"])
    assert history.allows("dynamodb:GetItem", runs) and history.allows("dynamodb:GetItem", definitions)
    for action in ("PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem"):
        assert not history.allows(f"dynamodb:{action}", runs), action
        assert not history.allows(f"dynamodb:{action}", definitions), action
    assert not history.allows("dynamodb:GetItem", _table(account, physical["TokensTable"]))
    bucket = f"arn:aws:s3:::{physical['PayloadBucket']}"
    assert history.allows("s3:GetObject", f"{bucket}/payloads/abc")
    assert not history.allows("s3:GetObject", f"{bucket}/runner/abc")  # a code task's transfers
    assert not history.allows("s3:PutObject", f"{bucket}/payloads/abc")


def test_the_gauges_function_only_queries_the_status_index(stacks):
    """It reads the runs in progress (docs/metrics.md, RunsInProgress) through ByStatus and nothing else."""
    policies, _, physical, account = stacks
    gauges = policies["GaugesFunction"]
    runs = _table(account, physical["RunsTable"])
    assert gauges.allows("dynamodb:Query", runs + "/index/ByStatus")
    assert not gauges.allows("dynamodb:Query", runs + "/index/ByWorkflow")
    for action in ("GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem"):
        assert not gauges.allows(f"dynamodb:{action}", runs), action
        for table in ("DefinitionsTable", "TokensTable", "HistoryTable"):
            assert not gauges.allows(f"dynamodb:{action}", _table(account, physical[table])), (action, table)


def test_every_granted_table_action_is_one_the_store_makes(stacks):
    """No grant for an action the code never makes: the actions come from the store's own calls."""
    # The store and the modules it hands its writes to (dynamo_epochs.py, dynamo_migration.py, ...).
    source = "\n".join(path.read_text() for path in sorted((ROOT / "infra/aws").glob("dynamo_*.py")))
    made = {"".join(p.title() for p in op.split("_"))
            for op in re.findall(r'(?:_call\(|\bcall\(\w+,)\s*"(\w+)"', source)}
    items = {"Put": "PutItem", "Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem", "Delete": "DeleteItem"}
    made |= {items[kind] for kind in re.findall(r'\{"(Put|Update|ConditionCheck|Delete)": \{', source)}
    made.discard("TransactWriteItems")  # authorised by its items' actions
    policies, _, _, _ = stacks
    granted = {a.split(":", 1)[1] for name in ENGINE_FUNCTIONS for s in policies[name].statements
               for a in s.actions if a.startswith("dynamodb:")}
    assert granted and granted <= made, granted - made


def test_a_handler_is_refused_what_its_role_does_not_grant():
    aws = EmbeddedAws()
    runtime = LocalRuntime(aws)
    try:
        dynamodb = wiring._client("dynamodb")
        tokens, runs = aws.stack.physical["TokensTable"], aws.stack.physical["RunsTable"]
        key = {"pk": {"S": "x"}, "sk": {"S": "y"}}
        dynamodb.get_item(TableName=runs, Key=key)  # outside a handler: an operator's call, not checked
        with runtime.permissions.calling("DeadLetterFunction"):
            with pytest.raises(ClientError) as caught:
                dynamodb.get_item(TableName=tokens, Key={"pk": {"S": "x"}})
            assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
            assert "dynamodb:GetItem" in str(caught.value)
            dynamodb.get_item(TableName=runs, Key=key)  # granted
        with runtime.permissions.calling("WorkerFunction"), pytest.raises(ClientError):
            dynamodb.delete_item(TableName=runs, Key=key)
        with runtime.permissions.calling("TaskRunnerFunction"), pytest.raises(ClientError):
            dynamodb.get_item(TableName=runs, Key=key)
        sqs = wiring._client("sqs")
        with runtime.permissions.calling("WorkerFunction"), pytest.raises(ClientError) as caught:
            sqs.purge_queue(QueueUrl=aws.stack.physical["ReadyQueue"])  # no rule for it: refused
        assert "deny by default" in str(caught.value)
    finally:
        runtime.stop()
        aws.stop()
        wiring.reset()
