"""What each data-bearing resource type of template.yaml becomes on moto (or any AWS-compatible endpoint).

Each creator takes the resolved CloudFormation Properties and returns the resource's Ref value and
attributes. "Already exists" counts as success, so provisioning twice against one emulator is harmless.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from loopline.embedded.intrinsics import as_text

if TYPE_CHECKING:
    from loopline.embedded.provision import _Provisioner


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


@contextmanager
def _exists_ok(*codes: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in codes:
            raise


def _create_table(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    ddb = prov.client("dynamodb")
    name = props.get("TableName") or prov.name(lid, 255)
    kwargs: dict[str, Any] = {"TableName": name, "BillingMode": props.get("BillingMode", "PROVISIONED")}
    for key in ("AttributeDefinitions", "KeySchema", "Tags"):
        if key in props:
            kwargs[key] = props[key]
    for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if key in props:
            kwargs[key] = _ints(props[key])
    for index in kwargs.get("GlobalSecondaryIndexes", []):
        index.pop("ContributorInsightsSpecification", None)  # CloudFormation-only
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if sse := props.get("SSESpecification"):
        kwargs["SSESpecification"] = {"Enabled": _flag(sse.get("SSEEnabled"))} | {
            k: sse[k] for k in ("SSEType", "KMSMasterKeyId") if k in sse}
    with _exists_ok("ResourceInUseException"):
        ddb.create_table(**kwargs)
    # Instant on moto; real endpoints (LocalStack, AWS) need the wait before TTL calls.
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _flag(ttl.get("Enabled")):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):  # re-enabling is an error
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and _flag(pitr.get("PointInTimeRecoveryEnabled")):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    table = ddb.describe_table(TableName=name)["Table"]
    if "StreamSpecification" in props and "LatestStreamArn" not in table:  # a table made by an older template
        ddb.update_table(TableName=name, StreamSpecification=kwargs["StreamSpecification"])
        table = ddb.describe_table(TableName=name)["Table"]
    streams = {"StreamArn": table["LatestStreamArn"]} if "LatestStreamArn" in table else {}
    return {"Ref": name, "Arn": table["TableArn"], **streams}


def _create_queue(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    sqs = prov.client("sqs")
    fifo = _flag(props.get("FifoQueue", False))
    name = props.get("QueueName") or prov.name(lid, 75) + (".fifo" if fifo else "")
    # CloudFormation takes the redrive policies as objects, SQS as JSON text.
    attributes = {
        key: json.dumps(value) if isinstance(value, dict) else as_text(value)
        for key, value in props.items() if key not in ("QueueName", "Tags")
    }
    tags = {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
    except ClientError as exc:
        # Same name, other attributes: a re-run with new parameters. Converge.
        if exc.response.get("Error", {}).get("Code") not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes.pop("FifoQueue", None)  # immutable
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _create_schedule_group(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    scheduler = prov.client("scheduler")
    name = props.get("Name") or prov.name(lid)
    with _exists_ok("ConflictException"):
        scheduler.create_schedule_group(Name=name)
    return {"Ref": name, "Arn": scheduler.get_schedule_group(Name=name)["Arn"]}


def _create_role(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    iam = prov.client("iam")
    name = props.get("RoleName") or prov.name(lid)
    with _exists_ok("EntityAlreadyExists"):
        iam.create_role(RoleName=name, Path=props.get("Path", "/"),
                        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
    # Inline policies are kept for inspection; moto does not enforce IAM, so
    # managed policy attachments would cost calls and buy nothing.
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    role = iam.get_role(RoleName=name)["Role"]
    return {"Ref": name, "Arn": role["Arn"], "RoleId": role["RoleId"]}


def _create_secret(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    sm = prov.client("secretsmanager")
    name = props.get("Name") or prov.name(lid, 256)
    value = props.get("SecretString")
    if value is None:  # GenerateSecretString, done locally: the value never leaves the emulator
        spec = props.get("GenerateSecretString") or {}
        value = secrets.token_urlsafe(32)
        if "SecretStringTemplate" in spec:
            document = json.loads(spec["SecretStringTemplate"])
            document[spec.get("GenerateStringKey", "password")] = value
            value = json.dumps(document)
    extra = {"Description": props["Description"]} if "Description" in props else {}
    # An existing secret keeps its value: rotating it would void issued links.
    with _exists_ok("ResourceExistsException"):
        sm.create_secret(Name=name, SecretString=value, **extra)
    arn = sm.describe_secret(SecretId=name)["ARN"]
    return {"Ref": arn, "Id": arn}


def _create_bucket(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    name = props.get("BucketName") or prov.name(lid, 63).lower()
    location = {} if prov.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": prov.region}}
    with _exists_ok("BucketAlreadyOwnedByYou"):
        prov.client("s3").create_bucket(Bucket=name, **location)
    return {"Ref": name, "Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


def _create_topic(prov: _Provisioner, lid: str, props: dict[str, Any]) -> dict[str, Any]:
    name = props.get("TopicName") or prov.name(lid, 256)
    arn = prov.client("sns").create_topic(Name=name)["TopicArn"]  # idempotent by name
    return {"Ref": arn, "TopicArn": arn, "TopicName": name}


def _ints(node: Any) -> Any:
    """Numbers arrive as text from parameters; the service APIs want ints."""
    if isinstance(node, dict):
        return {k: _ints(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_ints(v) for v in node]
    return int(node) if isinstance(node, str) and node.isdigit() else node


CREATORS = {
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SQS::Queue": _create_queue,
    "AWS::Scheduler::ScheduleGroup": _create_schedule_group,
    "AWS::IAM::Role": _create_role,
    "AWS::SecretsManager::Secret": _create_secret,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SNS::Topic": _create_topic,
}
