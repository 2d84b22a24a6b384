"""template.yaml's IAM policies, enforced on the calls the embedded stack's functions make.

On AWS a function may call only what its role allows; moto allows everything. So the local
runtime checks every AWS call a function's handler makes against the statements template.yaml
gives that function's role (SAM-translated, with the stack's real names) and answers
AccessDenied, as AWS would. A grant the code needs but the template lacks fails here, in the
tests, instead of after a deployment.

Deny by default: a call this module cannot map to IAM actions and resources is refused, and so
is a statement with a condition it cannot evaluate. It understands what the template uses:
Allow and Deny statements with Action/Resource lists, ``*`` and ``?`` wildcards, and
StringEquals conditions on keys of the request's context (``iam:PassedToService``). It is a
check of our own template, not an IAM simulator: no NotAction, no resource policies, no SCPs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# One API call's needs: (IAM action, resource ARN, condition context).
Need = tuple[str, str, Mapping[str, str]]


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        def listed(value: Any) -> tuple[str, ...]:
            return tuple(str(v) for v in (value if isinstance(value, list) else [value]) if v is not None)

        return cls(str(raw.get("Effect", "Allow")), listed(raw.get("Action")), listed(raw.get("Resource")),
                   raw.get("Condition") or {})

    def matches(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        return (any(_pattern(a, True).fullmatch(action) for a in self.actions)
                and any(_pattern(r, False).fullmatch(resource) for r in self.resources)
                and self._condition_holds(context))

    def _condition_holds(self, context: Mapping[str, str]) -> bool:
        for operator, tests in self.condition.items():
            if operator != "StringEquals":
                return False  # not understood: the statement grants nothing (deny by default)
            for key, wanted in tests.items():
                wanted = wanted if isinstance(wanted, list) else [wanted]
                if context.get(key) not in [str(w) for w in wanted]:
                    return False
        return True


@functools.lru_cache(maxsize=512)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters, ? one character. Actions are case-insensitive.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


class Policy:
    """The statements of one function's role."""

    def __init__(self, statements: Iterable[Mapping[str, Any]]) -> None:
        self.statements = tuple(Statement.parse(s) for s in statements)

    def allows(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
        context = context or {}
        matching = [s for s in self.statements if s.matches(action, resource, context)]
        return any(s.effect == "Allow" for s in matching) and not any(s.effect == "Deny" for s in matching)

    def check(self, function: str, operation: str, needs: list[Need]) -> None:
        """Raise AccessDenied (a botocore ClientError, as AWS's answer) unless every need is allowed."""
        for action, resource, context in needs:
            if not self.allows(action, resource, context):
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
                    f"{function} is not authorized to perform: {action} on resource: {resource} "
                    "(template.yaml grants its role no such permission)")}}, operation)


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _tail(name_or_arn: str, marker: str) -> str:
    """A name from a name or an ARN (``function:NAME``, ``table/NAME``)."""
    return name_or_arn.rsplit(marker, 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def _queue_arn(url: str, region: str) -> str:
    account, name = url.rstrip("/").split("/")[-2:]
    return _arn("sqs", region, account, name)


_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem"}


def needs(service: str, operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Need] | None:
    """What IAM asks of a caller for ``operation`` with ``params``; None when this module does not know."""
    if service == "dynamodb":
        def table(name: str, index: str | None = None) -> str:
            arn = _arn("dynamodb", region, account, f"table/{_tail(name, 'table/')}")
            return f"{arn}/index/{index}" if index else arn

        if operation == "TransactWriteItems":
            # IAM has no TransactWriteItems action: each item needs its own (PutItem, UpdateItem, ...).
            return [(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", table(body["TableName"]), {})
                    for item in params["TransactItems"] for kind, body in item.items()]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table(name), {}) for name in params["RequestItems"]]
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"):
            return [(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")), {})]
        return None
    if service == "sqs":
        action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}.get(operation, operation)
        if operation in ("SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
                         "ChangeMessageVisibility", "GetQueueAttributes"):
            return [(f"sqs:{action}", _queue_arn(params["QueueUrl"], region), {})]
        return None
    if service == "s3" and operation in ("GetObject", "PutObject", "HeadObject"):
        action = "GetObject" if operation == "HeadObject" else operation
        return [(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", {})]
    if service == "scheduler" and operation in ("CreateSchedule", "DeleteSchedule", "GetSchedule"):
        arn = _arn("scheduler", region, account, f"schedule/{params.get('GroupName', 'default')}/{params['Name']}")
        found: list[Need] = [(f"scheduler:{operation}", arn, {})]
        role = (params.get("Target") or {}).get("RoleArn")
        if operation == "CreateSchedule" and role:  # the schedule runs as a role the caller passes
            found.append(("iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"}))
        return found
    if service == "secretsmanager" and operation == "GetSecretValue":
        secret = params["SecretId"]
        return [("secretsmanager:GetSecretValue",
                 secret if secret.startswith("arn:") else _arn("secretsmanager", region, account, f"secret:{secret}"),
                 {})]
    if service == "lambda" and operation == "Invoke":
        name = _tail(params["FunctionName"], "function:")
        return [("lambda:InvokeFunction", _arn("lambda", region, account, f"function:{name}"), {})]
    return None


def denied_unknown(function: str, service: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
        f"{function}: the local runtime cannot tell which IAM permissions {service}:{operation} needs, so it "
        "refuses it (deny by default); teach loopline/embedded/iam.py's needs() about it")}}, operation)


class Enforcer:
    """Checks each call made while a function's handler runs (``calling``) against that function's
    policy. Calls made outside any handler (a test, a tool, the runtime's own poller) are not checked:
    on AWS they would be an operator's, with the operator's credentials."""

    def __init__(self, policies: Mapping[str, Policy], account: str) -> None:
        self.policies = dict(policies)
        self.account = account
        self._caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("loopline_caller", default=None)

    @contextlib.contextmanager
    def calling(self, function: str) -> Iterator[None]:
        token = self._caller.set(function)
        try:
            yield
        finally:
            self._caller.reset(token)

    def before_call(self, region: str, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        """A botocore ``before-parameter-build`` handler (also run when a URL is presigned)."""
        function = self._caller.get()
        if function is None:
            return
        service, operation = model.service_model.service_name, model.name
        found = needs(service, operation, params, region, self.account)
        if found is None:
            raise denied_unknown(function, service, operation)
        self.policies[function].check(function, operation, found)
