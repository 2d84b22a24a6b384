"""Pydantic models of the workflow file (docs/dsl.md, seed 003 section 3.2).

These describe the *shape* of a file; cross-references (ids that must exist,
cycles, expressions) are the compiler's job. Every model forbids unknown
fields, so a typo such as ``dependson`` is an error rather than silently
ignored. Durations are parsed here, so models hold seconds (floats).

Messages raised from validators here are final user-facing text: the compiler
prints them as they are, at the position of the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from statemachine.diagnostics import did_you_mean
from statemachine.durations import parse_duration
from statemachine.plan import ApprovalSpec, BreakerSpec, RetryPolicy, TriggerRule

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_ID = 128  # characters of an id
_ID_RE = re.compile(ID_PATTERN)
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)


def _id(value: Any) -> Any:
    if isinstance(value, str) and not _ID_RE.match(value):
        raise PydanticCustomError(
            "invalid_id", "invalid id '{value}' (letters, digits and _, not starting with a digit)",
            {"value": value},
        )
    if isinstance(value, str) and len(value) > MAX_ID:
        # Ids become DynamoDB keys (a registered workflow's, a task's item), which are bounded.
        raise PydanticCustomError("invalid_id", "id '{start}...' is longer than {limit} characters",
                                  {"start": value[:20], "limit": MAX_ID})
    return value


def duration_or_error(value: Any) -> Any:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        raise PydanticCustomError("duration", "invalid duration {shown}", {"shown": shown}) from None


def _version(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # `version: 1.0` is a YAML float; report it as semver
    if isinstance(value, str) and not _SEMVER_RE.match(value):
        raise PydanticCustomError(
            "semver", "invalid version '{value}' (expected semantic versioning, e.g. 1.0.0)",
            {"value": value},
        )
    return value


def matching(pattern: str, what: str, example: str):
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not regex.match(value):
            raise PydanticCustomError(
                "pattern", "invalid {what} '{value}' (expected {example})",
                {"what": what, "value": value, "example": example},
            )
        return value

    return BeforeValidator(check)


Id = Annotated[str, BeforeValidator(_id)]
Duration = Annotated[float | None, BeforeValidator(duration_or_error)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `config:` with nothing after it is null in YAML; for a list or mapping
        # field the author means "empty", not "invalid".
        if isinstance(data, dict):
            fields = {f.alias or name: f for name, f in cls.model_fields.items()}
            return {
                k: v for k, v in data.items()
                if not (v is None and k in fields and fields[k].default_factory is not None)
            }
        return data


# --- workflow-level sections -------------------------------------------------

class Metadata(Strict):
    id: Id
    name: str | None = None
    version: Annotated[str, BeforeValidator(_version)] = "1.0.0"
    description: str | None = None
    changelog: str | None = None  # what this version changed: kept with the version (docs/versions.md)
    author: str | None = None
    created_at: Any = None
    updated_at: Any = None
    tags: list[str] = Field(default_factory=list)


MAX_CUSTOM_DELAYS = 100  # a list of waits longer than this is a mistake, not a policy


class RetrySpec(Strict):
    max_attempts: int | None = Field(default=None, ge=1)
    strategy: Literal["exponential", "fixed", "custom"] | None = None
    delay: Duration = None
    initial_delay: Duration = None
    max_delay: Duration = None
    backoff_multiplier: float | None = Field(default=None, ge=1)
    jitter: Literal["full", "none"] | None = None
    retryable_errors: list[str] | None = None
    # strategy custom: the waits before the 2nd, 3rd, ... attempt, in order (docs/reference.md#retry).
    delays: list[Duration] | None = Field(default=None, max_length=MAX_CUSTOM_DELAYS)

    @model_validator(mode="after")
    def _one_delay(self) -> "RetrySpec":
        if self.delay is not None and self.initial_delay is not None:
            raise PydanticCustomError("retry_delay", "use either 'delay' or 'initial_delay', not both")
        custom = self.strategy == "custom"
        if custom and self.delays is None:
            raise PydanticCustomError("retry_custom", "strategy 'custom' needs 'delays': the waits before each "
                                                      "retry in order, e.g. [1s, 10s, 1m]")
        if self.delays is not None and not self.delays:
            raise PydanticCustomError("retry_custom", "'delays' must list at least one wait, e.g. [1s, 10s, 1m]")
        if self.delays is not None and not custom:
            raise PydanticCustomError("retry_custom", "'delays' goes with 'strategy: custom' (write both)")
        if custom:
            extra = [n for n in ("delay", "initial_delay", "backoff_multiplier") if getattr(self, n) is not None]
            if extra:
                raise PydanticCustomError("retry_custom", "strategy 'custom' waits its 'delays': '{name}' has no "
                                                          "meaning with it", {"name": extra[0]})
        return self


class Parallelism(Strict):
    max_concurrent: int | None = Field(default=None, ge=1)
    branch_timeout: Duration = None


MAX_RETENTION = 36_500 * 86_400.0  # a hundred years: past it, a time no clock or TTL reaches sensibly


class Persistence(Strict):
    enabled: bool = True
    checkpoint_interval: Duration = None
    # How long this workflow's ended runs and their history are kept (docs/history.md, "Retention"),
    # instead of the deployment's RetentionDays.
    retention_policy: Duration = None

    @field_validator("retention_policy")
    @classmethod
    def _retention(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= MAX_RETENTION:
            raise PydanticCustomError("retention", "retention_policy must be a duration from 1s to 36500d (a "
                                                   "hundred years), e.g. 90d; {shown} is not",
                                      {"shown": f"{value / 86_400:g}d" if value >= 86_400 else f"{value:g}s"})
        return value


class HumanInTheLoop(Strict):
    default_timeout: Duration = None
    notification_channels: list[Literal["email", "sms", "voice", "webhook"]] = Field(default_factory=list)


class Config(Strict):
    timeout: Duration = None
    max_retries: int | None = Field(default=None, ge=0)
    retry_policy: RetrySpec | None = None
    parallelism: Parallelism | None = None
    persistence: Persistence | None = None
    human_in_the_loop: HumanInTheLoop | None = None

    def retry_for(self, task_retry: RetrySpec | None) -> RetryPolicy:
        """Task ``retry`` over ``retry_policy`` over ``max_retries`` over no retry."""
        values: dict[str, Any] = {}
        if self.max_retries is not None:
            values["max_attempts"] = self.max_retries + 1
        # Field by field: a task saying only `max_attempts: 3` keeps the workflow's backoff.
        for spec in (self.retry_policy, task_retry):
            for name in sorted(spec.model_fields_set) if spec else ():
                value = getattr(spec, name)
                if value is not None:
                    key = "delay" if name == "initial_delay" else name
                    values[key] = tuple(value) if name in ("retryable_errors", "delays") else value
            if spec is not None and spec.strategy not in (None, "custom"):
                values.pop("delays", None)  # a task's own fixed or exponential strategy over a custom one
        if values.get("strategy") == "custom" and "max_attempts" not in values:
            values["max_attempts"] = len(values["delays"]) + 1  # each wait, then one more attempt
        return RetryPolicy(**values)


class Inputs(Strict):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    required: list[str] = Field(default_factory=list)
    defaults: dict[str, Any] = Field(default_factory=dict)


def merge_required(schema: dict, required: list) -> dict:
    """``inputs.required`` appended to the schema's own ``required`` (no duplicates)."""
    existing = schema.get("required", [])
    if not required or not isinstance(existing, list):
        return dict(schema)  # a non-list `required` is left for check_schema to report
    merged = list(existing)
    for name in required:
        if isinstance(name, str) and name not in merged:
            merged.append(name)
    return {**schema, "required": merged}


class Outputs(Strict):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    mappings: dict[str, Any] = Field(default_factory=dict)


class Variable(Strict):
    name: Id
    type: Literal["string", "number", "integer", "boolean", "object", "array"] | None = None
    default: Any = None
    description: str | None = None


class Migration(Strict):
    """How a run of an earlier version moves to this one (`loopline migrate`, docs/versions.md)."""

    from_: str = Field(alias="from")  # a version ("1.0.0"), or every version of a major ("1.x")
    rename: dict[Id, Id] = Field(default_factory=dict)  # that version's task id -> this version's
    state: Any = None  # an expression giving an object: the variables it names are set
    set: dict[Id, Any] = Field(default_factory=dict)  # variables set (after `state`): values or expressions


# --- tasks ---------------------------------------------------------------------

class EscalationPolicy(Strict):
    action: Literal["escalate", "auto_approve", "auto_reject", "fail"]
    next_approvers: list[str] = Field(default_factory=list)
    timeout: Duration = None


class ApprovalConfig(Strict):
    """An ``approval`` task's ``config``; also the settings part of ``requires_approval``."""

    approvers: list[str] = Field(default_factory=list)
    required_approvals: int = Field(default=1, ge=1)
    required_rejections: int = Field(default=1, ge=1)  # rejections that decide REJECTED (default: any)
    timeout: Duration = None
    reminder: Duration = None  # remind who has not decided this long before the deadline
    channels: list[Literal["email", "sms", "voice", "webhook"]] | None = None  # else config.human_in_the_loop's
    escalation_policy: EscalationPolicy | None = None
    title: Any = None
    description: Any = None
    details: Any = None

    def to_spec(self, default_timeout: float | None = None,
                channels: Sequence[str] | None = None) -> ApprovalSpec:
        """The plan's ApprovalSpec (seconds; the escalation policy as a plain dict)."""
        escalation = self.escalation_policy.model_dump(exclude_none=True) if self.escalation_policy else None
        return ApprovalSpec(
            approvers=tuple(self.approvers),
            required_approvals=self.required_approvals,
            required_rejections=self.required_rejections,
            timeout=self.timeout if self.timeout is not None else default_timeout,
            reminder=self.reminder,
            channels=tuple(self.channels if self.channels is not None else (channels or ("email",))),
            escalation_policy=escalation,
            title=self.title,
            description=self.description,
            details=self.details,
        )


class RequiresApproval(ApprovalConfig):
    enabled: bool = True


class Compensation(Strict):
    task_id: Id
    on_failure: bool = True
    on_cancel: bool = True


class CircuitBreaker(Strict):
    """A task's ``circuit_breaker`` (statemachine/circuit.py); the defaults are in the plan's BreakerSpec."""

    name: Id
    failures: int = Field(default=5, ge=1, le=100)  # statemachine.circuit.MAX_FAILURES
    window: Duration = 60.0
    open_for: Duration = 30.0

    @model_validator(mode="after")
    def _positive(self) -> "CircuitBreaker":
        for field in ("window", "open_for"):
            value = getattr(self, field)
            if value is None or value <= 0:
                raise PydanticCustomError("circuit_breaker", "'{field}' must be a duration above zero",
                                          {"field": field})
        return self

    def to_spec(self, scope: str) -> BreakerSpec:
        """``scope``: the workflow's id, whose runs alone share the breaker."""
        return BreakerSpec(name=self.name, failures=self.failures, window=self.window or 60.0,
                           open_for=self.open_for or 30.0, scope=scope)


class OutputDecl(Strict):
    name: Id
    value: Any = None
    export: bool = False


class Task(Strict):
    id: Id
    type: str
    name: str | None = None
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[Id] = Field(default_factory=list)
    when: Any = None
    skip_if: Any = None
    retry: RetrySpec | None = None
    timeout: Duration = None
    compensation: Compensation | None = None
    requires_approval: RequiresApproval | None = None
    outputs: list[OutputDecl] | None = None
    trigger_rule: TriggerRule = "none_failed_min_one_success"
    renamed_from: Id | None = None  # its id in the previous version (docs/versions.md)
    circuit_breaker: CircuitBreaker | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any, info: ValidationInfo) -> Any:
        # The compiler passes the catalogue it was given; imported here, not at the top, because the
        # catalogue's config models build on this module's (ApprovalConfig).
        from statemachine.task_types import TASK_TYPES, TaskCatalogue

        given = (info.context or {}).get("task_types")
        types: TaskCatalogue = TASK_TYPES if given is None else given
        if value not in types:
            close = did_you_mean(value, types.names) if isinstance(value, str) else ""
            raise PydanticCustomError(
                "task_type", "unknown task type '{value}' ({close}expected one of: {types})",
                {"value": value, "close": f"{close} " if close else "", "types": ", ".join(types.names)},
            )
        return value


def _ref_or_task(value: Any) -> str:
    return "task" if isinstance(value, dict) else "ref"


# A block lists either the id of a task defined elsewhere or a whole task inline.
TaskRef = Annotated[
    Union[Annotated[Id, Tag("ref")], Annotated[Task, Tag("task")]],
    Discriminator(_ref_or_task),
]


# --- control flow ------------------------------------------------------------------

class Block(Strict):
    id: Id
    name: str | None = None
    description: str | None = None
    depends_on: list[Id] = Field(default_factory=list)


class Condition(Block):
    if_: Any = Field(alias="if")
    then: list[TaskRef] = Field(default_factory=list)
    else_: list[TaskRef] = Field(default_factory=list, alias="else")


class Loop(Block):
    type: Literal["for_each", "while", "do_while"] = "for_each"
    items: Any = None
    iterator: Id = "item"
    condition: Any = None
    tasks: list[TaskRef] = Field(default_factory=list)
    max_iterations: int = Field(default=1000, ge=1)
    break_on: Any = None
    parallel: bool = False
    max_concurrent: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> "Loop":
        if self.type == "for_each" and self.items is None:
            raise PydanticCustomError("loop", "a for_each loop needs 'items'")
        if self.type == "for_each" and not isinstance(self.items, list) and not (
                isinstance(self.items, str) and "${" in self.items):
            raise PydanticCustomError("loop", "a for_each loop's items must be a list or an expression")
        if self.type != "for_each" and self.condition is None:
            raise PydanticCustomError("loop", "a {kind} loop needs 'condition'", {"kind": self.type})
        if self.type != "for_each" and self.parallel:
            # Its next iteration starts once its condition holds after the one before: they cannot overlap.
            raise PydanticCustomError("loop", "'parallel' is for a for_each loop: a {kind} loop's next iteration "
                                      "waits on its condition, evaluated after the iteration before",
                                      {"kind": self.type})
        return self


class Branch(Strict):
    name: Id
    tasks: list[TaskRef] = Field(default_factory=list)


class Aggregation(Strict):
    strategy: Literal["merge", "first", "all", "custom", "sum", "count", "min", "max"] = "merge"
    output_mapping: dict[str, Any] | None = None


class ParallelBlock(Block):
    branches: list[Branch] = Field(min_length=1)
    aggregation: Aggregation = Field(default_factory=Aggregation)
    max_concurrent: int | None = Field(default=None, ge=1)


class ControlFlow(Strict):
    conditions: list[Condition] = Field(default_factory=list)
    loops: list[Loop] = Field(default_factory=list)
    parallel: list[ParallelBlock] = Field(default_factory=list)


class CatchSpec(Strict):
    error_types: list[str] = Field(default_factory=list)  # empty: every error type
    handler: Id
    retry: bool = False


class ErrorHandling(Strict):
    catch: list[CatchSpec] = Field(default_factory=list)
    finally_: list[Id] = Field(default_factory=list, alias="finally")


class SubWorkflow(Block):
    workflow_ref: Annotated[
        str, matching(r"^[A-Za-z_][A-Za-z0-9_]*(@[0-9A-Za-z.+-]+)?$", "workflow_ref", "'id' or 'id@version'")
    ]
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration = None


class Workflow(Strict):
    metadata: Metadata
    config: Config = Field(default_factory=Config)
    inputs: Inputs = Field(default_factory=Inputs)
    outputs: Outputs = Field(default_factory=Outputs)
    variables: list[Variable] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    control_flow: ControlFlow = Field(default_factory=ControlFlow)
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    sub_workflows: list[SubWorkflow] = Field(default_factory=list)
    migrations: list[Migration] = Field(default_factory=list)

    def find(self, path: tuple) -> Any:
        """The model at a path of the file below ``workflow`` (keys as written: ``if``, ``else``)."""
        node: Any = self
        for step in path:
            if isinstance(step, int):
                node = node[step]
            else:
                node = getattr(node, {"if": "if_", "else": "else_", "finally": "finally_"}.get(step, step))
        return node


class WorkflowFile(Strict):
    workflow: Workflow
