"""The compiled execution plan: immutable, JSON-serialisable, content-hashed.

The compiler (statemachine.compiler) turns a workflow file into a Plan; the
engine never looks at the YAML again. Expressions are kept as their source
strings (``"${...}"``) and are parsed again at run time (parsing is cached), so
the plan stays plain JSON.

A plan's ``hash`` is the sha256 of its canonical JSON without the hash itself,
so equal workflows give equal hashes and a worker can cache plans by hash
forever.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TERMINAL = frozenset({"COMPLETED", "SKIPPED", "FAILED", "CANCELLED"})
TASK_STATUSES = ("PENDING", "READY", "RUNNING", "WAITING", "RETRYING") + tuple(sorted(TERMINAL))
RUN_STATUSES = ("PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "COMPENSATING")

TriggerRule = Literal[
    "none_failed_min_one_success",
    "all_success",
    "all_done",
    "one_success",
    "one_failed",
    "none_failed",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Resolved retry policy (task ``retry`` over ``config.retry_policy`` over no retry).

    Delays are seconds. ``max_attempts`` counts the first attempt too.
    """

    max_attempts: int = 1
    strategy: Literal["exponential", "fixed", "custom"] = "fixed"
    delay: float = 1.0
    max_delay: float | None = None
    backoff_multiplier: float = 2.0
    jitter: Literal["full", "none"] = "none"
    retryable_errors: tuple[str, ...] | None = None  # None: every error is retried
    # strategy custom: the wait before attempt n+1 is delays[n-1] (the last one repeated past the list's end).
    # None otherwise, and then left out of the plan's JSON: earlier plans keep their hash.
    delays: tuple[float, ...] | None = None


class BreakerSpec(_Frozen):
    """A task's ``circuit_breaker`` (statemachine/circuit.py): the breaker ``name``, shared by every task of
    the workflow ``scope`` (its id: every version) that names it, opens after ``failures`` failed attempts
    within ``window`` seconds and stays open ``open_for`` seconds before it lets one trial attempt through.
    Scoped, so that a workflow's author cannot open, or close, another workflow's breaker by its name."""

    name: str
    failures: int = 5
    window: float = 60.0
    open_for: float = 30.0
    scope: str = ""

    @property
    def key(self) -> str:
        """What the store keeps the breaker under: one per workflow and name."""
        return f"{self.scope}/{self.name}" if self.scope else self.name


class OutputSpec(_Frozen):
    name: str
    value: Any  # an expression string, or any literal
    export: bool = False


class ApprovalSpec(_Frozen):
    """Settings of an approval: an ``approval`` task's config or a ``requires_approval``."""

    approvers: tuple[Any, ...] = ()  # strings, may hold expressions
    required_approvals: int = 1
    required_rejections: int = 1
    timeout: float | None = None  # seconds
    reminder: float | None = None  # seconds before the deadline
    channels: tuple[str, ...] = ("email",)  # how approvers are told: email, sms, webhook
    escalation_policy: dict[str, Any] | None = None
    title: Any = None
    description: Any = None
    details: Any = None


class CompensationSpec(_Frozen):
    task_id: str
    on_failure: bool = True
    on_cancel: bool = True


class CatchSpec(_Frozen):
    error_types: tuple[str, ...] = ()  # empty: every error type
    handler: str
    retry: bool = False  # after the handler, run the failed task once more


Role = Literal["flow", "handler", "finally", "compensation", "tool"]


class Node(_Frozen):
    """One node of the graph: a task or a control-flow block.

    ``deps`` is every node this one waits for: explicit ``depends_on``, every
    ``tasks.<id>`` referenced in its expressions, and the block it is listed
    in (a task in a condition's ``then``/``else`` depends on the condition).
    ``dependents`` is the reverse edge list, so a transition touches only
    its out-edges.
    """

    id: str
    kind: Literal["task", "condition", "parallel", "loop", "sub_workflow"] = "task"
    type: str | None = None  # task type for kind == "task"
    name: str | None = None
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    deps: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    when: Any = None  # expression or literal; None means "always"
    skip_if: Any = None
    trigger_rule: TriggerRule = "none_failed_min_one_success"
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None  # seconds
    outputs: tuple[OutputSpec, ...] | None = None
    requires_approval: ApprovalSpec | None = None
    # For kind == "condition": the ``if`` expression and the branch members.
    condition: Any = None
    then: tuple[str, ...] = ()
    else_: tuple[str, ...] = ()
    # For a task listed in a condition's branch: (condition id, "then"|"else").
    branch_of: tuple[str, Literal["then", "else"]] | None = None
    # For kind == "parallel": {"strategy", "output_mapping", "branches": {name: [member ids]},
    # "last": {name: [ids no other member of the branch depends on]}}, in ``config``.
    # For a member of a parallel block: the block's id (its failures are the block's to judge).
    parallel_of: str | None = None
    # For kind == "loop": {"type", "items", "iterator", "condition", "max_iterations", "break_on",
    # "parallel", "max_concurrent", "body", "roots", "last"} in ``config``. For a loop body task:
    # the loop's id; the task runs once per iteration, and its ``dependents`` are body tasks only.
    loop_of: str | None = None
    # Dependencies that only order (max_concurrent): their outcome always counts as a success.
    order_deps: tuple[str, ...] = ()
    # "flow" nodes form the graph; the others run only in their role (dsl.md): a catch
    # handler after a caught failure, finally tasks at the end, compensation in a saga, a tool
    # when an llm task's model calls it (statemachine/tool_tasks.py).
    role: Role = "flow"
    compensation: CompensationSpec | None = None
    # Where the node was written (for messages at run time).
    line: int = 0
    col: int = 0
    # The id this task had in the previous version (docs/versions.md): the compatibility report and a
    # migration take it as the same task, renamed.
    renamed_from: str | None = None
    # A task's circuit breaker (statemachine/circuit.py); None: its attempts are never held back.
    circuit_breaker: BreakerSpec | None = None


class VariableSpec(_Frozen):
    name: str
    type: str | None = None
    default: Any = None
    description: str | None = None


class MigrationSpec(_Frozen):
    """A ``migrations`` entry (docs/versions.md): how a run of ``from_version`` moves to this version."""

    from_version: str  # "1.0.0", or "1.x": every version of major 1
    rename: dict[str, str] = Field(default_factory=dict)  # that version's task id -> this version's
    state: Any = None  # an expression giving an object of variables to set
    set: dict[str, Any] = Field(default_factory=dict)  # variables to set after it: values or expressions


class Plan(_Frozen):
    format: int = 1
    workflow_id: str
    name: str | None = None
    version: str = "1.0.0"
    description: str | None = None
    changelog: str | None = None  # what this version changed (metadata.changelog)
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    input_defaults: dict[str, Any] = Field(default_factory=dict)
    variables: tuple[VariableSpec, ...] = ()
    output_mappings: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    timeout: float | None = None  # workflow timeout, seconds
    max_concurrent: int | None = None
    catch: tuple[CatchSpec, ...] = ()
    finally_tasks: tuple[str, ...] = ()
    nodes: dict[str, Node]  # in a topological order
    roots: tuple[str, ...] = ()  # flow nodes with no deps
    sinks: tuple[str, ...] = ()  # flow nodes with no dependents
    # How runs of earlier versions move to this one; None (not an empty tuple) when there are none, so a
    # plan without them keeps the JSON and hash earlier releases gave it.
    migrations: tuple[MigrationSpec, ...] | None = None
    # The graph form's shared context (docs/graph-form.md): the variable the run's input is merged into
    # when the run starts (input keys win over the variable's default); None for a workflow file.
    input_into: str | None = None
    # How long an ended run of this plan and its history are kept, seconds (config.persistence.retention_policy);
    # None: the deployment's RetentionDays.
    retention: float | None = None
    hash: str = ""

    def _dump(self, exclude: set[str]) -> dict[str, Any]:
        # Fields added since format 1 are left out while unset, so a plan that uses none of them is
        # the JSON, and has the hash, earlier releases gave it: registering the same file again after
        # an upgrade is the same content, and an earlier release can still read it.
        body = self.model_dump(mode="json", exclude=exclude)
        for name in _ADDED_PLAN_FIELDS:
            if body.get(name) is None:
                body.pop(name, None)
        for node in body["nodes"].values():
            for name in _ADDED_NODE_FIELDS:
                if node.get(name) is None:
                    node.pop(name, None)
            if isinstance(node.get("retry"), dict) and node["retry"].get("delays") is None:
                node["retry"].pop("delays", None)
        return body

    def canonical_json(self) -> str:
        return json.dumps(self._dump({"hash"}), sort_keys=True, separators=(",", ":"))

    def with_hash(self) -> "Plan":
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()
        return self.model_copy(update={"hash": digest})

    def to_json(self) -> str:
        return json.dumps(self._dump(set()), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        return cls.model_validate_json(text)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]


_ADDED_PLAN_FIELDS = ("changelog", "migrations", "input_into", "retention")
_ADDED_NODE_FIELDS = ("renamed_from", "circuit_breaker")
