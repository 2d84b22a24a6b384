"""Create the stack described by template.yaml on moto (or any AWS-compatible endpoint).

moto's CloudFormation skips SAM resources and schedule groups, so the template
is translated with the SAM translator (offline) and each data-bearing resource
is created through its own service API. Lambda functions are not created: they
become ``FunctionSpec``s that the local runtime calls in-process; API routes and
SQS event sources are read from the translated template so that local and AWS
cannot drift apart. No Lambda event source mapping is ever created: with no
Docker, moto's mapping deletes messages without running any code.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from loopline.embedded.creators import CREATORS
from loopline.embedded.intrinsics import (
    IntrinsicError,
    Resolver,
    TemplateError,
    as_text,
    creation_order,
    parameter_values,
    read_parameters,
    references,
    translate,
)

__all__ = ["AsyncDestinations", "FunctionSpec", "ProvisionError", "QueueSource", "Route", "Stack", "provision",
           "translate"]

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_MOTO_ACCOUNT = "123456789012"

# Types that hold nothing a local run needs: they get a synthetic physical id.
_PASSIVE_TYPES = {
    "AWS::Lambda::Function", "AWS::Lambda::Permission", "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::Account", "AWS::ApiGateway::BasePathMapping", "AWS::ApiGateway::DomainName",
    "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",  # CloudWatch's; locally the dev server serves GET /metrics
    # GaugesFunction's schedule: locally the dev server's GET /metrics calls it at each scrape instead.
    "AWS::Events::Rule",
    # Nothing local is served over TLS (the S3 server beside moto is plain HTTP on 127.0.0.1),
    # so the TLS-only bucket policy is template-only, as are the access logs above.
    "AWS::S3::BucketPolicy",
    # The console's sign-in (Cognito user pool, app client, hosted-UI domain): the dev server serves
    # everyone as the local user on 127.0.0.1 and runs no authorizer, so nothing signs in locally.
    "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolDomain",
}


# One error type for callers: whatever stops a local stack, translation included.
ProvisionError = TemplateError


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str  # "functions.api.app.lambda_handler"
    environment: dict[str, str]
    timeout: int
    # The statements of its role's inline policies, resolved with the stack's names: what the
    # local runtime lets it call (loopline/embedded/iam.py). Managed policies (logs, traces) are left out.
    policy: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Route:
    method: str  # upper case; "ANY" for x-amazon-apigateway-any-method
    path: str  # "/runs/{run_id}"
    function: str  # logical id


@dataclass(frozen=True)
class QueueSource:
    queue_url: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream's event source mapping: what the local runtime polls and delivers."""

    stream_arn: str
    function: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_retry_attempts: int  # -1: until the record expires
    on_failure: str | None  # queue url for the record of a batch given up on


@dataclass(frozen=True)
class AsyncDestinations:
    """A function's EventInvokeConfig: where Lambda sends the record of an asynchronous invocation."""

    function: str  # logical id
    function_arn: str
    on_success: str | None  # queue url
    on_failure: str | None


@dataclass(frozen=True)
class Stack:
    physical: dict[str, str]  # logical id -> table name / queue url / group name / secret arn / role arn
    functions: dict[str, FunctionSpec]
    routes: tuple[Route, ...]
    queue_sources: tuple[QueueSource, ...]
    parameters: dict[str, str] = field(default_factory=dict)  # resolved template parameters
    # Functions invoked asynchronously, by the name callers use (the physical function name).
    async_invokes: dict[str, AsyncDestinations] = field(default_factory=dict)
    account: str = _MOTO_ACCOUNT  # the ARNs' account, for the local IAM check (loopline/embedded/iam.py)
    stream_sources: tuple[StreamSource, ...] = ()

    def with_public_url(self, public_url: str) -> Stack:
        """The same stack with links pointing at ``public_url`` (e.g. a gateway bound after provisioning)."""
        functions = {
            lid: replace(spec, environment={**spec.environment, "LOOPLINE_PUBLIC_URL": public_url.rstrip("/")})
            if "LOOPLINE_PUBLIC_URL" in spec.environment else spec
            for lid, spec in self.functions.items()
        }
        return replace(self, functions=functions)


# --------------------------------------------------------------- provisioning
class _Provisioner:
    def __init__(self, session: boto3.session.Session, region: str, endpoint_url: str | None,
                 stack_name: str, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self._session, self.region, self._endpoint = session, region, endpoint_url
        self._stack = stack_name
        self._clients: dict[str, Any] = {}
        self.account = self._account_id()
        pseudo = {
            "AWS::Region": region, "AWS::AccountId": self.account, "AWS::StackName": stack_name,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NotificationARNs": [],
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{self.account}:stack/{stack_name}/local",
        }
        self.resolver = Resolver(
            {**parameters, **pseudo}, template.get("Conditions", {}), self.ref, self.get_att,
            template.get("Mappings"), region,
        )
        self.resources = {
            lid: res for lid, res in template.get("Resources", {}).items()
            if "Condition" not in res or self.resolver.condition(res["Condition"])
        }
        self.attrs: dict[str, dict[str, Any]] = {}
        # A role a function runs as needs nothing locally; any other role
        # (the scheduler's) is real data the engine passes around.
        self.function_roles: set[str] = set()
        for res in self.resources.values():
            if res["Type"] == "AWS::Lambda::Function":
                self.function_roles |= references(res.get("Properties", {}).get("Role"))

    # -- clients and names --------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, region_name=self.region, endpoint_url=self._endpoint)
        return self._clients[service]

    def _account_id(self) -> str:
        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except (BotoCoreError, ClientError):
            return _MOTO_ACCOUNT

    def name(self, logical_id: str, limit: int = 64) -> str:
        name = f"{self._stack}-{logical_id}"
        if len(name) > limit:
            name = name[: limit - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        return name

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"

    # -- intrinsic callbacks ---------------------------------------------------
    def _lookup(self, logical_id: str) -> dict[str, Any]:
        if logical_id in self.attrs:
            return self.attrs[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise IntrinsicError(f"reference to unknown or disabled resource {logical_id!r}")
        if self.is_passive(logical_id):
            self.attrs[logical_id] = self._passive_attrs(logical_id, resource)
            return self.attrs[logical_id]
        raise ProvisionError(f"{logical_id} is referenced before it was created (dependency cycle?)")

    def ref(self, logical_id: str) -> Any:
        return self._lookup(logical_id)["Ref"]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        attrs = self._lookup(logical_id)
        if attribute not in attrs:
            raise ProvisionError(f"Fn::GetAtt {logical_id}.{attribute} is not supported locally")
        return attrs[attribute]

    def is_passive(self, logical_id: str) -> bool:
        kind = self.resources[logical_id]["Type"]
        return kind in _PASSIVE_TYPES or (kind == "AWS::IAM::Role" and logical_id in self.function_roles)

    def _passive_attrs(self, lid: str, resource: dict[str, Any]) -> dict[str, Any]:
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Lambda::Function":
            name = self.resolver.resolve(props.get("FunctionName")) or self.name(lid)
            return {"Ref": name, "Arn": self.arn("lambda", f"function:{name}")}
        if kind == "AWS::IAM::Role":
            name = self.name(lid)
            return {"Ref": name, "Arn": self.arn("iam", f"role/{name}", region=False), "RoleId": name}
        if kind == "AWS::ApiGateway::RestApi":
            # API ids are 10 lowercase alphanumerics; stable per stack so URLs are too.
            digest = hashlib.sha256(f"{self._stack}/{lid}".encode()).digest()
            alphabet = string.ascii_lowercase + string.digits
            api_id = "".join(alphabet[b % len(alphabet)] for b in digest[:10])
            return {"Ref": api_id, "RootResourceId": api_id[:6]}
        if kind == "AWS::Cognito::UserPool":
            # Pool ids are "{region}_{9 alphanumerics}"; the ARN is what a role's statements name.
            pool_id = f"{self.region}_" + hashlib.sha256(f"{self._stack}/{lid}".encode()).hexdigest()[:9]
            return {"Ref": pool_id, "UserPoolId": pool_id, "Arn": self.arn("cognito-idp", f"userpool/{pool_id}"),
                    "ProviderName": f"cognito-idp.{self.region}.amazonaws.com/{pool_id}",
                    "ProviderURL": f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"}
        if kind == "AWS::Cognito::UserPoolClient":
            return {"Ref": self.name(lid), "ClientId": self.name(lid), "Name": self.name(lid)}
        return {"Ref": self.name(lid)}

    def create(self, lid: str) -> None:
        kind = self.resources[lid]["Type"]
        creator = CREATORS.get(kind)
        if creator is None:
            raise ProvisionError(
                f"resource {lid} has type {kind}, which the local provisioner cannot create; "
                "teach loopline/embedded/provision.py about it")
        props = self.resolver.resolve(self.resources[lid].get("Properties", {}))
        self.attrs[lid] = creator(self, lid, props)

    # -- what the local runtime runs ----------------------------------------
    def functions(self, public_url: str | None) -> dict[str, FunctionSpec]:
        specs = {}
        for lid, res in self.resources.items():
            if res["Type"] != "AWS::Lambda::Function":
                continue
            props = res.get("Properties", {})
            variables = self.resolver.resolve(props.get("Environment", {}).get("Variables", {}))
            environment = {key: as_text(value) for key, value in variables.items()}
            if public_url is not None and "LOOPLINE_PUBLIC_URL" in environment:
                environment["LOOPLINE_PUBLIC_URL"] = public_url.rstrip("/")
            specs[lid] = FunctionSpec(
                logical_id=lid,
                handler=str(self.resolver.resolve(props.get("Handler", ""))),
                environment=environment,
                timeout=int(self.resolver.resolve(props.get("Timeout", 3))),
                policy=self._role_statements(props.get("Role")),
            )
        return specs

    def _role_statements(self, role: Any) -> tuple[dict[str, Any], ...]:
        statements: list[dict[str, Any]] = []
        for lid in sorted(references(role)):
            resource = self.resources.get(lid, {})
            if resource.get("Type") != "AWS::IAM::Role":
                continue
            for policy in self.resolver.resolve(resource.get("Properties", {}).get("Policies", [])):
                found = policy.get("PolicyDocument", {}).get("Statement", [])
                statements.extend(found if isinstance(found, list) else [found])
        return tuple(statements)

    def _function_by_arn(self, arn_or_name: str) -> str:
        match = re.search(r"function:([^:/]+)", arn_or_name)
        name = match.group(1) if match else arn_or_name
        for lid, res in self.resources.items():
            if res["Type"] == "AWS::Lambda::Function" and self.ref(lid) == name:
                return lid
        raise ProvisionError(f"{arn_or_name!r} names no function in the template")

    def routes(self) -> tuple[Route, ...]:
        found = set()
        for lid, res in self.resources.items():
            if res["Type"] != "AWS::ApiGateway::RestApi":
                continue
            props = res.get("Properties", {})
            if "BodyS3Location" in props:
                raise ProvisionError(f"{lid}: BodyS3Location cannot be read locally; inline the body")
            for path, operations in (props.get("Body") or {}).get("paths", {}).items():
                for verb, operation in operations.items():
                    integration = isinstance(operation, dict) and operation.get("x-amazon-apigateway-integration")
                    if not integration or integration.get("type") != "aws_proxy":
                        continue
                    uri = as_text(self.resolver.resolve(integration["uri"]))
                    target = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
                    method = "ANY" if verb == "x-amazon-apigateway-any-method" else verb.upper()
                    found.add(Route(method, path, self._function_by_arn(target)))
        return tuple(sorted(found, key=lambda route: (route.path, route.method)))

    def _queues_by_arn(self) -> dict[str, str]:
        """The stack's queues: ARN -> URL."""
        return {attrs["Arn"]: attrs["Ref"] for lid, attrs in self.attrs.items()
                if self.resources[lid]["Type"] == "AWS::SQS::Queue"}

    def async_invokes(self) -> dict[str, AsyncDestinations]:
        queues_by_arn = self._queues_by_arn()
        found = {}
        for res in self.resources.values():
            if res["Type"] != "AWS::Lambda::EventInvokeConfig":
                continue
            props = self.resolver.resolve(res.get("Properties", {}))
            function = self._function_by_arn(as_text(props["FunctionName"]))
            config = props.get("DestinationConfig") or {}
            targets = {}
            for when in ("OnSuccess", "OnFailure"):
                arn = (config.get(when) or {}).get("Destination")
                if arn is not None and arn not in queues_by_arn:
                    raise ProvisionError(f"{function}: the local runtime only sends {when} records to SQS queues "
                                         f"of this stack, not {arn!r}")
                targets[when] = queues_by_arn.get(arn) if arn else None
            name = self.ref(function)
            found[name] = AsyncDestinations(function, self.arn("lambda", f"function:{name}"), targets["OnSuccess"],
                                            targets["OnFailure"])
        return found

    def _mappings(self, of_streams: bool) -> Iterator[tuple[str, dict[str, Any]]]:
        """The event source mappings (logical id, resolved properties) of DynamoDB streams, or of the others."""
        streams = {attrs["StreamArn"] for lid, attrs in self.attrs.items()
                   if self.resources[lid]["Type"] == "AWS::DynamoDB::Table" and "StreamArn" in attrs}
        for lid, res in self.resources.items():
            if res["Type"] == "AWS::Lambda::EventSourceMapping":
                props = self.resolver.resolve(res.get("Properties", {}))
                if (props.get("EventSourceArn", "") in streams) == of_streams:
                    yield lid, props

    def queue_sources(self) -> tuple[QueueSource, ...]:
        queues_by_arn = self._queues_by_arn()
        sources = []
        for lid, props in self._mappings(of_streams=False):
            source = props.get("EventSourceArn", "")
            if source not in queues_by_arn:
                raise ProvisionError(f"{lid}: the local runtime only polls SQS queues of this stack, not {source!r}")
            concurrency = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
            sources.append(QueueSource(
                queue_url=queues_by_arn[source],
                function=self._function_by_arn(as_text(props["FunctionName"])),
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                maximum_concurrency=int(concurrency) if concurrency is not None else None,
            ))
        return tuple(sources)

    def stream_sources(self) -> tuple[StreamSource, ...]:
        queues_by_arn = self._queues_by_arn()
        sources = []
        for lid, props in self._mappings(of_streams=True):
            failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if failure is not None and failure not in queues_by_arn:
                raise ProvisionError(f"{lid}: the local runtime only sends failure records to SQS queues of this "
                                     f"stack, not {failure!r}")
            sources.append(StreamSource(
                stream_arn=props["EventSourceArn"],
                function=self._function_by_arn(as_text(props["FunctionName"])),
                batch_size=int(props.get("BatchSize", 100)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                on_failure=queues_by_arn.get(failure) if failure else None,
            ))
        return tuple(sources)


def provision(
    session: boto3.session.Session,
    template_path: str | Path = DEFAULT_TEMPLATE,
    parameters: dict[str, str] | None = None,
    stack_name: str = "loopline",
    public_url: str | None = None,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> Stack:
    """Create the template's resources through ``session`` and describe what to run.

    Safe to repeat against the same emulator: existing resources are reused
    (and an existing secret keeps its value, so issued links stay valid).
    """
    region = region or session.region_name or "us-east-1"
    path = Path(template_path)
    values = parameter_values(read_parameters(path), dict(parameters or {}))
    template = translate(path, region, {k: v for k, v in values.items() if isinstance(v, str)})
    prov = _Provisioner(session, region, endpoint_url, stack_name, template, values)
    data_bearing = [lid for lid in prov.resources if not prov.is_passive(lid)]
    for lid in creation_order(prov.resources, data_bearing):
        prov.create(lid)
    functions, routes, queue_sources = prov.functions(public_url), prov.routes(), prov.queue_sources()
    physical = {lid: as_text(prov.attrs[lid]["Ref"]) for lid in prov.resources if lid in prov.attrs}
    return Stack(
        physical=physical, functions=functions, routes=routes, queue_sources=queue_sources,
        parameters={k: as_text(v) if isinstance(v, str) else ",".join(v) for k, v in values.items()},
        async_invokes=prov.async_invokes(), account=prov.account, stream_sources=prov.stream_sources(),
    )


def routes_from_template(template_path: str | Path = DEFAULT_TEMPLATE) -> tuple[Route, ...]:
    """The API routes of template.yaml's functions, read without any emulator (for local mode)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(Path(template_path).read_text())
    found = set()
    for lid, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") == "Api":
                props = event["Properties"]
                found.add(Route(str(props["Method"]).upper(), props["Path"], lid))
    return tuple(sorted(found, key=lambda route: (route.path, route.method)))


def powertools_settings(function_lid: str, template_path: str | Path = DEFAULT_TEMPLATE) -> dict[str, str]:
    """A function's ``POWERTOOLS_*`` variables in template.yaml (the metrics namespace, the service
    name), read without any emulator: local mode calls the api handler in-process, and Powertools'
    metrics refuse to flush without the namespace the template gives it."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(Path(template_path).read_text())
    props = (template.get("Resources") or {}).get(function_lid, {}).get("Properties") or {}
    variables = (props.get("Environment") or {}).get("Variables") or {}
    return {key: value for key, value in variables.items() if key.startswith("POWERTOOLS_") and isinstance(value, str)}


def handler_of(function_lid: str, template_path: str | Path = DEFAULT_TEMPLATE) -> str:
    """A function's ``Handler`` in template.yaml (``functions.api.app.lambda_handler``), read without any
    emulator: local mode calls each route's handler in-process."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(Path(template_path).read_text())
    return str(((template.get("Resources") or {}).get(function_lid, {}).get("Properties") or {})["Handler"])
