"""The local runtime's IAM check (loopline/embedded/iam.py): what a statement grants, what a call needs."""

import pytest
from botocore.exceptions import ClientError

from loopline.embedded.iam import Policy, needs

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/runs"


def test_actions_match_case_insensitively_with_wildcards_and_resources_exactly():
    policy = Policy([{"Effect": "Allow", "Action": ["dynamodb:Get*", "sqs:sendmessage"], "Resource": TABLE},
                     {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/payloads/*"}])
    assert policy.allows("dynamodb:GetItem", TABLE)
    assert not policy.allows("dynamodb:GetItem", TABLE + "2")
    assert not policy.allows("dynamodb:PutItem", TABLE)
    assert policy.allows("sqs:SendMessage", TABLE)
    assert policy.allows("s3:GetObject", "arn:aws:s3:::b/payloads/ab")
    assert not policy.allows("s3:GetObject", "arn:aws:s3:::b/runner/ab")


def test_deny_wins_and_nothing_is_allowed_by_default():
    assert not Policy([]).allows("dynamodb:GetItem", TABLE)
    policy = Policy([{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
                     {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"}])
    assert policy.allows("dynamodb:GetItem", TABLE) and not policy.allows("dynamodb:DeleteItem", TABLE)


def test_conditions_are_evaluated_and_an_unknown_operator_grants_nothing():
    role = "arn:aws:iam::123456789012:role/timers"
    policy = Policy([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
                      "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
                     {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
                      "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}])
    assert policy.allows("iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"})
    assert not policy.allows("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not policy.allows("iam:PassRole", role)
    assert not policy.allows("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", {"aws:SourceIp": "10.0.0.1"})


def test_a_refused_call_is_answered_as_aws_answers_it():
    with pytest.raises(ClientError) as caught:
        Policy([]).check("WorkerFunction", "DeleteItem", [("dynamodb:DeleteItem", TABLE, {})])
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "WorkerFunction is not authorized to perform: dynamodb:DeleteItem" in str(caught.value)


def test_what_calls_need():
    assert needs("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Update": {"TableName": "runs"}}, {"ConditionCheck": {"TableName": "runs"}},
        {"Put": {"TableName": "tokens"}}]}, REGION, ACCOUNT) == [
        ("dynamodb:UpdateItem", TABLE, {}), ("dynamodb:ConditionCheckItem", TABLE, {}),
        ("dynamodb:PutItem", TABLE.replace("runs", "tokens"), {})]
    assert needs("dynamodb", "Query", {"TableName": TABLE, "IndexName": "by_status"}, REGION, ACCOUNT) == [
        ("dynamodb:Query", TABLE + "/index/by_status", {})]
    assert needs("sqs", "SendMessageBatch", {"QueueUrl": "http://localhost/123456789012/ready"}, REGION,
                 ACCOUNT) == [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:ready", {})]
    assert needs("s3", "HeadObject", {"Bucket": "b", "Key": "payloads/x"}, REGION, ACCOUNT) == [
        ("s3:GetObject", "arn:aws:s3:::b/payloads/x", {})]
    assert needs("scheduler", "CreateSchedule", {"Name": "n", "GroupName": "g", "Target": {"RoleArn": "r"}},
                 REGION, ACCOUNT) == [
        ("scheduler:CreateSchedule", f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/g/n", {}),
        ("iam:PassRole", "r", {"iam:PassedToService": "scheduler.amazonaws.com"})]
    assert needs("lambda", "Invoke", {"FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:runner"},
                 REGION, ACCOUNT) == [("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:runner",
                                       {})]
    assert needs("sqs", "PurgeQueue", {"QueueUrl": "http://localhost/1/q"}, REGION, ACCOUNT) is None
    tables = {"RequestItems": {"runs": [], "history": []}}
    assert needs("dynamodb", "BatchWriteItem", tables, REGION, ACCOUNT) == [
        ("dynamodb:BatchWriteItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}", {})
        for name in ("runs", "history")]
    assert needs("dynamodb", "Scan", {"TableName": "runs"}, REGION, ACCOUNT) is not None
    assert needs("dynamodb", "RestoreTableFromBackup", {}, REGION, ACCOUNT) is None
