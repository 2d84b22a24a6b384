"""loopline/embedded/provision.py: template.yaml created on a fresh moto per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from loopline.embedded.intrinsics import NO_VALUE, Resolver
from loopline.embedded.provision import ProvisionError, QueueSource, Route, Stack, provision

REGION = "us-east-1"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def stack(session: boto3.session.Session) -> Stack:
    return provision(session, parameters={"QueueVisibilityTimeout": "90"})


def test_tables_have_keys_ttl_and_recovery(session: boto3.session.Session, stack: Stack) -> None:
    ddb = session.client("dynamodb", region_name=REGION)
    expected = {
        "DefinitionsTable": ({"pk": "HASH", "sk": "RANGE"}, None),
        "RunsTable": ({"pk": "HASH", "sk": "RANGE"}, "ttl"),
        "TokensTable": ({"pk": "HASH"}, "expires_at"),
    }
    for lid, (keys, ttl_attribute) in expected.items():
        name = stack.physical[lid]
        assert name == f"loopline-{lid}"
        table = ddb.describe_table(TableName=name)["Table"]
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == keys
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED"
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl_attribute is None:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        else:
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", ttl_attribute)
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_ready_queue_redrives_to_the_dlq_with_the_parameter_timeout(
        session: boto3.session.Session, stack: Stack) -> None:
    sqs = session.client("sqs", region_name=REGION)
    ready = sqs.get_queue_attributes(QueueUrl=stack.physical["ReadyQueue"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=stack.physical["DeadLetterQueue"], AttributeNames=["All"])["Attributes"]
    assert ready["VisibilityTimeout"] == "90"
    assert json.loads(ready["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert ready["SqsManagedSseEnabled"] == "true"
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_schedule_group_role_and_secret_exist(session: boto3.session.Session, stack: Stack) -> None:
    group = session.client("scheduler", region_name=REGION).get_schedule_group(Name=stack.physical["TimerGroup"])
    assert group["State"] == "ACTIVE"
    iam = session.client("iam", region_name=REGION)
    role = iam.get_role(RoleName=stack.physical["SchedulerRole"])["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="deliver-wakeups")["PolicyDocument"]
    assert policy["Statement"][0]["Action"] == "sqs:SendMessage"
    secret_arn = stack.physical["LinkKeySecret"]
    value = session.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=secret_arn)
    assert value["ARN"] == secret_arn and len(value["SecretString"]) >= 32


def test_runs_table_has_the_listing_indexes(session: boto3.session.Session, stack: Stack) -> None:
    table = session.client("dynamodb", region_name=REGION).describe_table(
        TableName=stack.physical["RunsTable"])["Table"]
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {"ByStatus": ["status", "created_at"], "ByWorkflow": ["workflow_id", "created_at"]}


def test_routes_come_from_the_template(stack: Stack) -> None:
    assert {Route("GET", f"/console/{name}", "ConsoleSignInFunction") for name in ("login", "auth", "logout")} \
        <= set(stack.routes)
    assert {route for route in stack.routes if route.function == "ApiFunction"} == {
        Route("POST", "/runs", "ApiFunction"),
        Route("GET", "/runs", "ApiFunction"),
        Route("GET", "/runs/counts", "ApiFunction"),
        Route("GET", "/runs/{run_id}/tasks/{task_id}/iterations", "ApiFunction"),
        Route("GET", "/runs/{run_id}", "ApiFunction"),
        Route("GET", "/runs/{run_id}/links", "ApiFunction"),
        Route("POST", "/runs/{run_id}/cancel", "ApiFunction"),
        Route("POST", "/runs/{run_id}/pause", "ApiFunction"),
        Route("POST", "/runs/{run_id}/resume", "ApiFunction"),
        Route("POST", "/runs/{run_id}/redrive", "ApiFunction"),
        Route("POST", "/runs/{run_id}/migrate", "ApiFunction"),
        Route("POST", "/runs/{run_id}/rewind", "ApiFunction"),
        Route("GET", "/approvals", "ApiFunction"),
        Route("POST", "/runs/{run_id}/approvals/{task_id}", "ApiFunction"),
        Route("POST", "/runs/{run_id}/callbacks/{callback_id}", "ApiFunction"),
        Route("POST", "/runs/{run_id}/events/{name}", "ApiFunction"),
        Route("GET", "/approvals/{token}", "ApiFunction"),
        Route("POST", "/approvals/{token}", "ApiFunction"),
        Route("POST", "/callbacks/{token}", "ApiFunction"),
        Route("GET", "/callbacks/{token}", "ApiFunction"),
        Route("POST", "/workflows", "ApiFunction"),
        Route("GET", "/workflows", "ApiFunction"),
        Route("GET", "/workflows/{workflow_id}", "ApiFunction"),
        Route("POST", "/workflows/{workflow_id}/versions/{version}/deprecate", "ApiFunction"),
        Route("POST", "/workflows/{workflow_id}/versions/{version}/migrate", "ApiFunction"),
        Route("GET", "/workflows/{workflow_id}/diff", "ApiFunction"),
        Route("GET", "/openapi.json", "ApiFunction"),
        Route("GET", "/runs/{run_id}/history", "ApiFunction"),
        Route("GET", "/audit", "ApiFunction"),
        Route("POST", "/workflow/start/{name}", "ApiFunction"),  # seed 000's front door
        Route("GET", "/workflow/status/{run_id}", "ApiFunction"),
        Route("GET", "/workflow/resume", "ApiFunction"),
        Route("POST", "/workflow/resume", "ApiFunction"),
        Route("POST", "/graph/create", "ApiFunction"),  # seed 004's graph API
        Route("POST", "/graph/run", "ApiFunction"),
        Route("POST", "/graph/resume/{run_id}", "ApiFunction"),
        Route("GET", "/graph/state/{run_id}", "ApiFunction"),
    }
    assert {route for route in stack.routes if route.function == "ConsoleFunction"} == {
        Route("GET", "/", "ConsoleFunction"),
        Route("GET", "/console", "ConsoleFunction"),
        Route("GET", "/console/runs/{run_id}", "ConsoleFunction"),
        Route("GET", "/console/runs/{run_id}/tasks/{task_id}", "ConsoleFunction"),
        Route("GET", "/console/approvals", "ConsoleFunction"),
        Route("GET", "/console/workflows", "ConsoleFunction"),
        Route("GET", "/console/workflows/{workflow_id}", "ConsoleFunction"),
        Route("GET", "/console/audit", "ConsoleFunction"),
        Route("GET", "/console/static/{file}", "ConsoleFunction"),
        Route("POST", "/console/runs/{run_id}/{action}", "ConsoleFunction"),
        Route("POST", "/console/approvals/{run_id}/{task_id}", "ConsoleFunction"),
        Route("POST", "/console/workflows/{workflow_id}/versions/{version}/deprecate", "ConsoleFunction"),
    }


def test_the_worker_reads_the_ready_and_result_queues_and_the_dead_letter_function_the_dlq(stack: Stack) -> None:
    assert set(stack.queue_sources) == {
        QueueSource(queue_url=stack.physical["ReadyQueue"], function="WorkerFunction", batch_size=10,
                    report_batch_item_failures=True),
        QueueSource(queue_url=stack.physical["TaskResultQueue"], function="WorkerFunction", batch_size=10,
                    report_batch_item_failures=True),
        QueueSource(queue_url=stack.physical["DeadLetterQueue"], function="DeadLetterFunction", batch_size=10,
                    report_batch_item_failures=True)}


def test_the_task_runner_is_invoked_asynchronously_with_its_records_to_the_result_queue(stack: Stack) -> None:
    runner = stack.functions["TaskRunnerFunction"]
    assert (runner.handler, runner.timeout) == ("functions.task_runner.app.lambda_handler", 900)
    assert runner.environment == {}  # none of the engine's settings
    name = stack.functions["WorkerFunction"].environment["LOOPLINE_TASK_RUNNER_FUNCTION"]
    target = stack.async_invokes[name]
    assert target.function == "TaskRunnerFunction" and target.function_arn.endswith(f":function:{name}")
    assert target.on_success == target.on_failure == stack.physical["TaskResultQueue"]


def test_no_event_source_mapping_is_created(session: boto3.session.Session, stack: Stack) -> None:
    assert session.client("lambda", region_name=REGION).list_event_source_mappings()["EventSourceMappings"] == []


def test_environment_resolves_to_physical_resources(session: boto3.session.Session, stack: Stack) -> None:
    queue_arn = session.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.physical["ReadyQueue"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role_arn = session.client("iam", region_name=REGION).get_role(
        RoleName=stack.physical["SchedulerRole"])["Role"]["Arn"]
    api, worker = stack.functions["ApiFunction"], stack.functions["WorkerFunction"]
    assert (api.handler, api.timeout) == ("functions.api.app.lambda_handler", 29)
    assert (worker.handler, worker.timeout) == ("functions.worker.app.lambda_handler", 30)
    for spec in (api, worker):
        env = spec.environment
        assert env["LOOPLINE_DEFINITIONS_TABLE"] == "loopline-DefinitionsTable"
        assert env["LOOPLINE_RUNS_TABLE"] == "loopline-RunsTable"
        assert env["LOOPLINE_TOKENS_TABLE"] == "loopline-TokensTable"
        assert env["LOOPLINE_READY_QUEUE_URL"] == stack.physical["ReadyQueue"]
        assert env["LOOPLINE_READY_QUEUE_ARN"] == queue_arn
        assert env["LOOPLINE_SCHEDULE_GROUP"] == stack.physical["TimerGroup"]
        assert env["LOOPLINE_SCHEDULER_ROLE_ARN"] == role_arn
        assert env["LOOPLINE_LINK_KEY_SECRET"] == stack.physical["LinkKeySecret"]
        assert env["LOOPLINE_LEASE_SECONDS"] == "90"
        assert env["POWERTOOLS_SERVICE_NAME"] == "loopline"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Loopline"
    # As on AWS: the worker gets the API's URL, the API function derives it per request.
    api_id = stack.physical["LooplineApi"]
    assert worker.environment["LOOPLINE_PUBLIC_URL"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/Prod"
    assert api.environment["LOOPLINE_PUBLIC_URL"] == ""


def test_the_console_sign_in_resolves_without_cognito(stack: Stack) -> None:
    """The user pool, its client and domain are passive locally (nothing signs in on the dev server), yet
    the sign-in function's environment and role resolve to names of the same shape as on AWS."""
    env = stack.functions["ConsoleSignInFunction"].environment
    pool_id = env["LOOPLINE_CONSOLE_USER_POOL_ID"]
    assert pool_id.startswith(f"{REGION}_") and env["LOOPLINE_CONSOLE_CLIENT_NAME"] == "loopline-console"
    assert env["LOOPLINE_CONSOLE_AUTH_DOMAIN"].endswith(f".auth.{REGION}.amazoncognito.com")
    [statement] = stack.functions["ConsoleAuthorizerFunction"].policy
    assert statement["Action"] == "cognito-idp:ListUserPoolClients"
    assert statement["Resource"].endswith(f":userpool/{pool_id}")


def test_public_url_overrides_every_function(session: boto3.session.Session) -> None:
    stack = provision(session, public_url="http://127.0.0.1:8080/")
    engine = [f for f in stack.functions.values() if f.logical_id not in NO_LINKS]
    assert {f.environment["LOOPLINE_PUBLIC_URL"] for f in engine} == {"http://127.0.0.1:8080"}
    later = stack.with_public_url("http://127.0.0.1:9999")
    assert {f.environment["LOOPLINE_PUBLIC_URL"] for f in later.functions.values()
            if f.logical_id not in NO_LINKS} == {"http://127.0.0.1:9999"}
    assert "LOOPLINE_PUBLIC_URL" not in later.functions["TaskRunnerFunction"].environment


NO_LINKS = ("TaskRunnerFunction", "HistoryFunction", "GaugesFunction", "ConsoleAuthorizerFunction")  # no link made


def test_public_url_parameter_reaches_the_worker(session: boto3.session.Session) -> None:
    stack = provision(session, parameters={"PublicUrl": "https://flows.example.com"})
    assert stack.functions["WorkerFunction"].environment["LOOPLINE_PUBLIC_URL"] == "https://flows.example.com"
    assert stack.functions["ApiFunction"].environment["LOOPLINE_PUBLIC_URL"] == "https://flows.example.com"


def test_provisioning_twice_converges_and_keeps_the_secret(session: boto3.session.Session, stack: Stack) -> None:
    secrets = session.client("secretsmanager", region_name=REGION)
    before = secrets.get_secret_value(SecretId=stack.physical["LinkKeySecret"])["SecretString"]
    again = provision(session, parameters={"QueueVisibilityTimeout": "120"})
    assert again.physical == stack.physical
    assert secrets.get_secret_value(SecretId=stack.physical["LinkKeySecret"])["SecretString"] == before
    attributes = session.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=stack.physical["ReadyQueue"], AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "120"


@pytest.mark.parametrize("parameters, message", [
    ({"NoSuchParameter": "1"}, "unknown template parameters"),
    ({"QueueVisibilityTimeout": "10"}, "below MinValue"),
    ({"QueueVisibilityTimeout": "soon"}, "not a number"),
    ({"StageName": "has space"}, "does not match"),
])
def test_bad_parameters_are_refused(session: boto3.session.Session, parameters: dict[str, str],
                                    message: str) -> None:
    with pytest.raises(ProvisionError, match=message):
        provision(session, parameters=parameters)


def test_stack_name_prefixes_physical_names(session: boto3.session.Session) -> None:
    stack = provision(session, stack_name="other")
    assert stack.physical["RunsTable"] == "other-RunsTable"
    assert stack.functions["WorkerFunction"].environment["LOOPLINE_RUNS_TABLE"] == "other-RunsTable"


def _write(tmp_path: Path, resources: str, extra: str = "") -> Path:
    path = tmp_path / "template.yaml"
    path.write_text("AWSTemplateFormatVersion: '2010-09-09'\n"
                    "Transform: AWS::Serverless-2016-10-31\n" + extra + "Resources:\n" + resources)
    return path


def test_unknown_data_bearing_type_is_an_error(session: boto3.session.Session, tmp_path: Path) -> None:
    path = _write(tmp_path, "  Stream:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 1}\n")
    with pytest.raises(ProvisionError, match="Stream has type AWS::Kinesis::Stream"):
        provision(session, path)


def test_conditions_buckets_topics_and_intrinsics(session: boto3.session.Session, tmp_path: Path) -> None:
    extra = ("Parameters:\n  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}\n"
             "Conditions:\n  IsProd: !Equals [!Ref Env, prod]\n")
    resources = (
        "  Payloads:\n    Type: AWS::S3::Bucket\n"
        "  Alerts:\n    Type: AWS::SNS::Topic\n"
        "  ProdOnly:\n    Type: AWS::SQS::Queue\n    Condition: IsProd\n"
        "  Jobs:\n    Type: AWS::SQS::Queue\n    Properties:\n"
        "      DelaySeconds: !If [IsProd, 5, !Ref AWS::NoValue]\n"
        "      Tags:\n        - Key: bucket\n"
        "          Value: !Join ['/', [!Ref Payloads, !Select [2, !Split [':', !Ref Alerts]]]]\n"
        "        - Key: literal\n          Value: !Sub '${!NotAVariable}-${AWS::StackName}'\n"
    )
    stack = provision(session, _write(tmp_path, resources, extra))
    assert "ProdOnly" not in stack.physical
    assert stack.physical["Payloads"] == "loopline-payloads"
    session.client("s3", region_name=REGION).head_bucket(Bucket="loopline-payloads")
    assert stack.physical["Alerts"].endswith(":loopline-Alerts")
    sqs = session.client("sqs", region_name=REGION)
    tags = sqs.list_queue_tags(QueueUrl=stack.physical["Jobs"])["Tags"]
    assert tags == {"bucket": "loopline-payloads/sns", "literal": "${NotAVariable}-loopline"}
    delay = sqs.get_queue_attributes(QueueUrl=stack.physical["Jobs"], AttributeNames=["DelaySeconds"])
    assert delay["Attributes"]["DelaySeconds"] == "0"
    prod = provision(session, _write(tmp_path, resources, extra), parameters={"Env": "prod"}, stack_name="p")
    assert "ProdOnly" in prod.physical


def test_resolver_drops_no_value_and_resolves_sub_variables() -> None:
    resolver = Resolver({"Name": "x"}, {"No": {"Fn::Equals": ["a", "b"]}}, ref=lambda n: f"ref-{n}",
                        get_att=lambda n, a: f"{n}.{a}")
    node = {"A": {"Fn::If": ["No", 1, {"Ref": "AWS::NoValue"}]},
            "B": [{"Ref": "AWS::NoValue"}, {"Fn::Sub": ["${Name}-${Local}-${Res.Arn}-${Thing}", {"Local": "l"}]}]}
    assert resolver.resolve(node) == {"B": ["x-l-Res.Arn-ref-Thing"]}
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
