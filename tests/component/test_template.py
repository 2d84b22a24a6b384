"""template.yaml: lint-clean, least privilege, and the contract other code relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopline.embedded.intrinsics import references
from loopline.embedded.provision import DEFAULT_TEMPLATE, translate

ROOT = Path(__file__).resolve().parents[2]
ENV_NAMES = {
    "LOOPLINE_DEFINITIONS_TABLE", "LOOPLINE_RUNS_TABLE", "LOOPLINE_TOKENS_TABLE",
    "LOOPLINE_READY_QUEUE_URL", "LOOPLINE_READY_QUEUE_ARN", "LOOPLINE_SCHEDULE_GROUP",
    "LOOPLINE_SCHEDULER_ROLE_ARN", "LOOPLINE_LINK_KEY_SECRET", "LOOPLINE_PAYLOAD_BUCKET", "LOOPLINE_LEASE_SECONDS",
    "LOOPLINE_PUBLIC_URL", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE",
    "LOOPLINE_PROVIDER_DEFAULTS", "LOOPLINE_EMAIL_FROM", "LOOPLINE_EGRESS_ALLOW", "LOOPLINE_LINKS_IN_VIEWS",
    "LOOPLINE_CUSTOM_MODULES", "LOOPLINE_RETENTION_DAYS",
}
LINT_ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translate(DEFAULT_TEMPLATE, "us-east-1")


def _statements(node: Any) -> list[dict[str, Any]]:
    """Every IAM statement anywhere in the template (inline policies, SAM policy templates, trust policies)."""
    found = []
    if isinstance(node, dict):
        statement = node.get("Statement")
        if statement is not None:
            for item in statement if isinstance(statement, list) else [statement]:
                # A statement granted only under a condition: both branches count (one is AWS::NoValue).
                branches = item["Fn::If"][1:] if isinstance(item, dict) and "Fn::If" in item else [item]
                found.extend(b for b in branches if b != {"Ref": "AWS::NoValue"})
        for value in node.values():
            found.extend(_statements(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_statements(item))
    return found


def test_cfn_lint_is_clean() -> None:
    # The CLI, as `make lint` runs it (it also honours a .cfnlintrc).
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint if cfn_lint.exists() else shutil.which("cfn-lint")), str(DEFAULT_TEMPLATE)],
        capture_output=True, text=True, env=LINT_ENV, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_sam_validate_lint_is_clean() -> None:
    candidates = [ROOT / ".venv-sam/bin/sam", Path("/tmp/samvenv/bin/sam"), shutil.which("sam")]
    sam = next((Path(c) for c in candidates if c and Path(c).exists()), None)
    if sam is None:
        pytest.skip("SAM CLI not installed (make sam-setup)")
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template", str(DEFAULT_TEMPLATE)],
        capture_output=True, text=True, env=LINT_ENV, cwd=ROOT, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_iam_statement_has_a_wildcard_action(cfn: dict[str, Any]) -> None:
    statements = _statements(cfn["Resources"])
    assert len(statements) >= 10  # the walk really reaches the SAM policy-template expansions
    for statement in statements:
        assert "NotAction" not in statement, statement
        if statement["Effect"] == "Deny":  # a wildcard denies more (the bucket's TLS-only policy)
            continue
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, statement


def test_managed_policies_are_only_the_sam_defaults(cfn: dict[str, Any]) -> None:
    # Managed policies cannot be inspected here, so pin them.
    allowed = {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    }
    for lid, resource in cfn["Resources"].items():
        arns = resource.get("Properties", {}).get("ManagedPolicyArns", [])
        if lid == "ApiGatewayLogsRoleForAccount":  # API Gateway's own role, to write access logs
            assert arns == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                        "AmazonAPIGatewayPushToCloudWatchLogs"}]
            continue
        assert set(arns) <= allowed


def test_functions_have_exactly_the_contract_environment(cfn: dict[str, Any]) -> None:
    functions = {lid: r for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"ApiFunction", "ConsoleFunction", "WorkerFunction", "DeadLetterFunction",
                              "TaskRunnerFunction", "HistoryFunction", "GaugesFunction", "ConsoleAuthorizerFunction",
                              "ConsoleSignInFunction"}
    # The gauges read the runs table's status index: its name, and where its metrics go.
    assert set(functions.pop("GaugesFunction")["Properties"]["Environment"]["Variables"]) == {
        "LOOPLINE_RUNS_TABLE", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}
    # The sign-in functions hold no engine setting at all: only how to find the user pool.
    console = {"LOOPLINE_CONSOLE_USER_POOL_ID", "LOOPLINE_CONSOLE_CLIENT_NAME", "POWERTOOLS_SERVICE_NAME"}
    assert set(functions.pop("ConsoleAuthorizerFunction")["Properties"]["Environment"]["Variables"]) == console
    assert set(functions.pop("ConsoleSignInFunction")["Properties"]["Environment"]["Variables"]) == console | {
        "LOOPLINE_CONSOLE_AUTH_DOMAIN", "LOOPLINE_PUBLIC_URL"}
    own = {"WorkerFunction": {"LOOPLINE_TASK_RUNNER_FUNCTION", "LOOPLINE_TASK_RESULT_QUEUE_ARN",
                              "LOOPLINE_SMS_ENABLED", "LOOPLINE_BEDROCK_MODELS"},
           "ApiFunction": {"LOOPLINE_HISTORY_TABLE"},  # the API reads history and writes the audit log
           "ConsoleFunction": {"LOOPLINE_HISTORY_TABLE"}}  # so does the console
    for lid, resource in functions.items():
        assert resource["Properties"]["TracingConfig"] == {"Mode": "Active"}
        if lid in ("TaskRunnerFunction", "HistoryFunction"):
            continue
        variables = resource["Properties"]["Environment"]["Variables"]
        assert set(variables) == ENV_NAMES | own.get(lid, set()), lid
    # The history function also reads a task's run and plan (its metrics' labels): those tables, payloads/.
    assert set(functions["HistoryFunction"]["Properties"]["Environment"]["Variables"]) == {
        "LOOPLINE_HISTORY_TABLE", "LOOPLINE_RETENTION_DAYS", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE",
        "LOOPLINE_RUNS_TABLE", "LOOPLINE_DEFINITIONS_TABLE", "LOOPLINE_PAYLOAD_BUCKET"}
    assert functions["ApiFunction"]["Properties"]["Handler"] == "functions.api.app.lambda_handler"
    assert functions["ConsoleFunction"]["Properties"]["Handler"] == "functions.console.app.lambda_handler"
    assert functions["WorkerFunction"]["Properties"]["Handler"] == "functions.worker.app.lambda_handler"
    assert functions["DeadLetterFunction"]["Properties"]["Handler"] == "functions.dead_letter.app.lambda_handler"
    assert functions["TaskRunnerFunction"]["Properties"]["Handler"] == "functions.task_runner.app.lambda_handler"


def test_the_task_runner_holds_nothing_of_the_engine(cfn: dict[str, Any]) -> None:
    """Issue #9: no table, queue, secret or bucket access, no engine setting; only its logs, traces and the
    send of its destination records to the result queue."""
    resources = cfn["Resources"]
    runner = resources["TaskRunnerFunction"]["Properties"]
    assert "Environment" not in runner
    assert runner["Timeout"] == 900
    role = resources[runner["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert set(role["ManagedPolicyArns"]) == {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                                              "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}
    grants = {(s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]), references(s["Resource"]).pop())
              for s in _statements(role["Policies"])}
    assert grants == {("sqs:SendMessage", "TaskResultQueue")}
    invoke = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 0 and invoke["FunctionName"] == {"Ref": "TaskRunnerFunction"}
    assert {d["Destination"]["Fn::GetAtt"][0] for d in invoke["DestinationConfig"].values()} == {"TaskResultQueue"}


def test_the_history_function_reads_the_runs_stream_and_writes_history_only(cfn: dict[str, Any]) -> None:
    """Issue #11: history is read off the runs table's stream (no write added to a transition) by a
    function whose role can put history entries (and read which are there, to write a batch of them at
    once) and read that stream, and get a run's and a plan's
    item (and a large one's payload) to label task metrics: no other read, no write of the engine's."""
    resources = cfn["Resources"]
    assert resources["RunsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert resources["HistoryTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "ttl",
                                                                                  "Enabled": True}
    function = resources["HistoryFunction"]["Properties"]
    role = resources[function["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert set(role["ManagedPolicyArns"]) == {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                                              "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}
    grants = {(a, resource) for s in _statements(role["Policies"])
              for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
              for resource in references(s["Resource"])}
    assert grants == {("dynamodb:PutItem", "HistoryTable"), ("dynamodb:BatchGetItem", "HistoryTable"),
                      ("dynamodb:BatchWriteItem", "HistoryTable"), ("dynamodb:DescribeStream", "RunsTable"),
                      ("dynamodb:GetRecords", "RunsTable"), ("dynamodb:GetShardIterator", "RunsTable"),
                      ("dynamodb:ListStreams", "RunsTable"), ("sqs:SendMessage", "HistoryFailureQueue"),
                      ("dynamodb:GetItem", "RunsTable"), ("dynamodb:GetItem", "DefinitionsTable"),
                      ("s3:GetObject", "PayloadBucket")}
    payloads = [s["Resource"] for s in _statements(role["Policies"]) if s["Action"] == "s3:GetObject"]
    assert payloads == [{"Fn::Sub": "${PayloadBucket.Arn}/payloads/*"}]  # not the runner's transfers
    mapping = resources["HistoryStream"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["RunsTable", "StreamArn"]}
    assert mapping["BisectBatchOnFunctionError"] is True and mapping["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"]
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["HistoryFailureQueue", "Arn"]}
    assert cfn["Parameters"]["RetentionDays"]["Default"] == 30


def test_only_the_worker_may_start_the_task_runner(cfn: dict[str, Any]) -> None:
    invokers = {lid for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role"
                for s in _statements(r["Properties"].get("Policies", []))
                if "lambda:InvokeFunction" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert invokers == {"WorkerFunctionRole"}


def test_resources_have_the_contract_logical_ids(cfn: dict[str, Any]) -> None:
    types = {lid: r["Type"] for lid, r in cfn["Resources"].items()}
    expected = {
        "DefinitionsTable": "AWS::DynamoDB::Table", "RunsTable": "AWS::DynamoDB::Table",
        "TokensTable": "AWS::DynamoDB::Table", "ReadyQueue": "AWS::SQS::Queue",
        "DeadLetterQueue": "AWS::SQS::Queue", "TimerGroup": "AWS::Scheduler::ScheduleGroup",
        "SchedulerRole": "AWS::IAM::Role", "LinkKeySecret": "AWS::SecretsManager::Secret",
        "LooplineApi": "AWS::ApiGateway::RestApi",
    }
    assert {lid: types.get(lid) for lid in expected} == expected
    assert set(cfn["Parameters"]) >= {"QueueVisibilityTimeout", "PublicUrl", "StageName"}
    assert set(cfn["Outputs"]) >= {"ApiUrl", "DefinitionsTableName", "RunsTableName", "TokensTableName",
                                   "ReadyQueueUrl"}


def test_dependency_graph_is_acyclic(cfn: dict[str, Any]) -> None:
    # cfn-lint does not see cycles that only appear after the SAM transform
    # (e.g. ApiFunction's environment referring to LooplineApi), and
    # CloudFormation rejects them at deploy time.
    resources = cfn["Resources"]
    deps = {}
    for lid, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        deps[lid] = (references(resource) | set(depends)) & set(resources)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("dependency cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in deps[node]:
            visit(dep, path + [node])
        state[node] = 2

    for lid in resources:
        visit(lid, [])


def test_worker_timeout_fits_in_the_smallest_lease(cfn: dict[str, Any]) -> None:
    timeout = cfn["Resources"]["WorkerFunction"]["Properties"]["Timeout"]
    assert timeout <= int(cfn["Parameters"]["QueueVisibilityTimeout"]["MinValue"])


def test_template_has_no_yaml_aliases() -> None:
    # CloudFormation rejects YAML anchors and aliases outright.
    text = DEFAULT_TEMPLATE.read_text()
    assert not re.search(r"(^|\s)[&*][A-Za-z]", text, re.M)


def test_run_control_routes_need_iam_and_link_routes_do_not():
    """Issue #5: run control behind IAM on AWS; approval/callback links carry their own credential."""
    template = translate(DEFAULT_TEMPLATE, "us-east-1")
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    paths = api["Properties"]["Body"]["paths"]
    for path, methods in paths.items():
        if path == "/console" or path.startswith("/console/"):
            continue  # behind the console's own authorizer: the next test
        for method, spec in methods.items():
            # GET / only redirects to the console (which is behind its sign-in): it shows nothing.
            # Seed 000's /workflow/resume?token= carries its token in the query (functions/api/front_door_routes.py).
            open_route = (path.startswith(("/approvals/{token}", "/callbacks/{token}"))
                          or path in ("/", "/workflow/resume"))
            assert bool(spec.get("security")) is not open_route or spec.get("security") == [{"NONE": []}], \
                (path, method, spec.get("security"))
            if not open_route:
                assert {"AWS_IAM": []} in spec["security"], (path, method)


def test_the_api_stage_is_throttled_and_logged(cfn: dict[str, Any]) -> None:
    """Issue #9 item 17: a flood is answered 429 by API Gateway; every request leaves an access log line."""
    [stage] = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    [settings] = stage["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    assert "ApiAccessLogs" in references(stage["AccessLogSetting"]["DestinationArn"])
    assert "$context.identity.sourceIp" in stage["AccessLogSetting"]["Format"]
    assert cfn["Resources"]["ApiGatewayAccount"]["Condition"] == "CreatesApiGatewayLogsRole"


def test_the_payload_bucket_refuses_requests_without_tls(cfn: dict[str, Any]) -> None:
    [policy] = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert policy["Bucket"] == {"Ref": "PayloadBucket"}
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["PayloadBucket", "Arn"]} in statement["Resource"]


def test_every_function_the_template_builds_has_a_makefile_target(cfn: dict[str, Any]) -> None:
    """`sam build` runs `make build-<LogicalId>` for each function with BuildMethod makefile."""
    makefile = (ROOT / "Makefile").read_text()
    for lid in (lid for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"):
        assert re.search(rf"^build-\w+.*\bbuild-{lid}\b.*:|^build-{lid}\b.*:", makefile, re.MULTILINE), lid


def test_the_alarms_and_dashboard_read_metrics_the_history_function_emits(cfn: dict[str, Any]) -> None:
    import json

    from statemachine.metrics import MetricName

    resources = cfn["Resources"]
    namespace = resources["HistoryFunction"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    dead = resources["DeadLettersAlarm"]["Properties"]
    assert (dead["Namespace"], dead["MetricName"], dead["Threshold"]) == (namespace, MetricName.DEAD_LETTERS, 0)
    assert dead["ComparisonOperator"] == "GreaterThanThreshold"
    rate = resources["RunFailureRateAlarm"]["Properties"]["Metrics"]
    read = {m["MetricStat"]["Metric"]["MetricName"] for m in rate if "MetricStat" in m}
    assert read == {MetricName.RUNS_FAILED, MetricName.RUNS_COMPLETED, MetricName.RUNS_CANCELLED}
    assert all(m["MetricStat"]["Metric"]["Namespace"] == namespace for m in rate if "MetricStat" in m)
    body = resources["MetricsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    shown = {line[1] for w in widgets for line in w["properties"].get("metrics", [])}
    assert shown <= {name.value for name in MetricName} and len(shown) >= 8
    assert all(line[0] == namespace for w in widgets for line in w["properties"].get("metrics", []))


SIGN_IN_ROUTES = {("GET", "/console/login"), ("GET", "/console/auth"), ("GET", "/console/logout")}


def _console_events() -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """Every Api event on a /console path, of any function (the console's pages are added by others):
    (method, path) -> (function, event properties)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(DEFAULT_TEMPLATE.read_text())
    found = {}
    for lid, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") == "Api" and (props["Path"] == "/console" or props["Path"].startswith("/console/")):
                found[(str(props["Method"]).upper(), props["Path"])] = (lid, props)
    return found


def test_every_console_route_but_the_sign_in_ones_uses_the_console_authorizer(cfn: dict[str, Any]) -> None:
    """A browser cannot sign with IAM: the console's routes are behind ConsoleAuthorizer (its Cognito
    session cookie), except the three that sign in, which a browser without a session must reach."""
    events = _console_events()
    assert SIGN_IN_ROUTES <= set(events)
    for route, (function, props) in events.items():
        authorizer = (props.get("Auth") or {}).get("Authorizer")
        if route in SIGN_IN_ROUTES:
            assert (function, authorizer) == ("ConsoleSignInFunction", "NONE"), route
        else:
            assert authorizer == "ConsoleAuthorizer", (route, function, authorizer)
    # The same, as API Gateway gets it; and the console's authorizer guards no route outside the console.
    paths = cfn["Resources"]["LooplineApi"]["Properties"]["Body"]["paths"]
    for path, methods in paths.items():
        for method, spec in methods.items():
            console = path == "/console" or path.startswith("/console/")
            expected = [{"NONE": []}] if (method.upper(), path) in SIGN_IN_ROUTES else [{"ConsoleAuthorizer": []}]
            assert (spec.get("security") == expected) if console else \
                {"ConsoleAuthorizer": []} not in spec.get("security", []), (path, method)


def test_the_console_authorizer_reads_the_cookie_and_an_unsigned_browser_is_sent_to_sign_in(
        cfn: dict[str, Any]) -> None:
    body = cfn["Resources"]["LooplineApi"]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["ConsoleAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert scheme["type"] == "request" and scheme["identitySource"] == "method.request.header.Cookie"
    assert scheme["authorizerResultTtlInSeconds"] == 300
    assert "ConsoleAuthorizerFunction" in references(scheme["authorizerUri"])
    unauthorized = body["x-amazon-apigateway-gateway-responses"]["UNAUTHORIZED"]
    assert unauthorized["statusCode"] == "302"
    location = unauthorized["responseParameters"]["gatewayresponse.header.Location"]["Fn::If"]
    assert location[0] == "UseApiUrl" and all(b["Fn::Sub"].endswith("/console/login'") for b in location[1:])


def test_the_console_user_pool_takes_no_self_sign_up_and_its_client_no_secret(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    pool = resources["ConsoleUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    passwords = pool["Policies"]["PasswordPolicy"]
    assert passwords["MinimumLength"] >= 12 and all(
        passwords[k] is True for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert pool["MfaConfiguration"] in ("OPTIONAL", "ON")
    client = resources["ConsoleUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False and client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    # The session cookie lives expires_in seconds, the access token's lifetime: the ID token's must match.
    assert client["IdTokenValidity"] == client["AccessTokenValidity"]
    assert client["TokenValidityUnits"]["IdToken"] == client["TokenValidityUnits"]["AccessToken"]
    callbacks = client["CallbackURLs"]["Fn::If"][1]
    assert [c["Fn::Sub"] for c in callbacks] == [
        "https://${LooplineApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}/console/auth"]
    assert resources["ConsoleUserPoolDomain"]["Properties"]["UserPoolId"] == {"Ref": "ConsoleUserPool"}


def test_the_console_functions_may_only_look_up_the_app_client(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    for lid in ("ConsoleAuthorizerFunction", "ConsoleSignInFunction"):
        role = resources[resources[lid]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert set(role["ManagedPolicyArns"]) == {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                                                  "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}, lid
        [statement] = _statements(role["Policies"])
        assert statement["Action"] == "cognito-idp:ListUserPoolClients", lid
        assert statement["Resource"] == {"Fn::GetAtt": ["ConsoleUserPool", "Arn"]}, lid
