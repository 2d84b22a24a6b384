"""What the API and the CLI share: turning a request into a plan and a run, with user-facing errors."""

from __future__ import annotations

from typing import Any

from statemachine.admission import plan_problems
from statemachine.compiler import compile_workflow
from statemachine.diagnostics import WorkflowError
from statemachine.inputs import InputError
from statemachine.limits import DeploymentLimits
from statemachine.plan import Plan
from statemachine.versions import WorkflowVersion, parse_ref

from .sandbox.settings import SandboxSettings

MAX_SOURCE = 1_000_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def compile_source(source: Any, limits: DeploymentLimits, filename: str = "workflow.yaml", *,
                   sandbox: SandboxSettings) -> Plan:
    """``limits``: what the deployment lets a workflow ask for (the engine's ``settings.limits``); ``sandbox``:
    how a graph's functions are resolved (the engine's ``settings.sandbox``)."""
    if isinstance(source, dict):
        # A workflow sent as a JSON object: positions in errors refer to its YAML rendering.
        import yaml

        source = yaml.safe_dump(source, sort_keys=False)
    if not isinstance(source, str) or not source.strip():
        raise ApiError(400, "'workflow' must be the workflow's YAML text (or object) or a registered workflow id")
    if len(source) > MAX_SOURCE:
        raise ApiError(413, f"the workflow is larger than {MAX_SOURCE} characters")
    try:
        plan = compile_workflow(source, filename, limits)
        if plan.input_into is not None:  # a graph document: its functions must name callables
            check_functions(source, filename, limits, sandbox)
        return plan
    except WorkflowError as error:
        raise ApiError(400, "invalid workflow", diagnostics=[str(d) for d in error.diagnostics]) from error


def check_functions(source: str, filename: str, limits: DeploymentLimits, sandbox: SandboxSettings) -> None:
    """A graph's function nodes resolved as the task runner resolves them (infra/graph_functions.py): a
    WorkflowError naming each that does not; a 503 when the check could not be made (nothing is kept)."""
    from .graph_functions import ResolveError, check_graph_functions

    try:
        check_graph_functions(source, filename, limits, sandbox)
    except ResolveError as error:
        raise ApiError(503, f"the graph's functions could not be checked: {error}") from error


def _looks_like_yaml(source: str) -> bool:
    return "\n" in source or ":" in source.split("@")[0]


def resolve_workflow(engine, source: Any) -> Plan:
    if isinstance(source, str) and source.strip() and not _looks_like_yaml(source.strip()):
        return _registered(engine, source.strip())
    return compile_source(source, engine.settings.limits, sandbox=engine.settings.sandbox)


def _registered(engine, ref: str) -> Plan:
    """The plan a new run of ``ref`` runs: never a deprecated version's (docs/versions.md)."""
    entry = engine.plans.version_of(ref)
    workflow_id, version = parse_ref(ref)
    if entry is None and version is None and next(iter(engine.store.workflow_versions(workflow_id)), None):
        raise ApiError(409, f"every version of workflow '{workflow_id}' is deprecated: register a new one")
    if entry is None:
        raise ApiError(404, f"no registered workflow '{ref}'")
    if entry.deprecated:
        raise ApiError(409, _deprecated(entry), deprecated=entry.ref)
    return engine.plan(entry.plan_hash)


def _deprecated(entry: WorkflowVersion) -> str:
    why = f" ({entry.deprecation})" if entry.deprecation else ""
    return (f"workflow '{entry.ref}' is deprecated{why}: new runs of it are refused; start "
            f"'{entry.workflow_id}' for its newest version")


def deprecated_refs(engine, plan: Plan) -> list[WorkflowVersion]:
    """The deprecated versions a plan's sub-workflows name exactly: a new run would start them. (A run
    already going still starts them: it is a run of a version that was not refused.)"""
    refs = [n.config["workflow_ref"] for n in plan.nodes.values() if n.kind == "sub_workflow"]
    entries = [engine.plans.version_of(ref) for ref in dict.fromkeys(refs)]
    return [entry for entry in entries if entry is not None and entry.deprecated]


def unregistered_refs(engine, plan: Plan) -> list[str]:
    """Sub-workflows a plan names that the registry does not hold (known before the run starts)."""
    refs = [n.config["workflow_ref"] for n in plan.nodes.values() if n.kind == "sub_workflow"]
    return [ref for ref in dict.fromkeys(refs) if engine.find_workflow(ref) is None]


def refused_by_deployment(engine, plan: Plan) -> list[str]:
    """What this deployment will not run in ``plan`` and the registered workflows it starts, at any depth:
    a registered workflow was checked when registered, but the deployment's limits may have changed since."""
    limits, problems = engine.settings.limits, []
    pending, seen = [plan], {plan.hash}
    while pending:
        current = pending.pop()
        problems += plan_problems(current, limits)
        for node in current.nodes.values():
            child = engine.find_workflow(node.config["workflow_ref"]) if node.kind == "sub_workflow" else None
            if child is not None and child.hash not in seen:
                seen.add(child.hash)
                pending.append(child)
    return problems


def start_from_request(engine, body: dict[str, Any]) -> dict[str, Any]:
    plan = resolve_workflow(engine, body.get("workflow"))
    return start_plan(engine, plan, body.get("input", body.get("inputs")))


def start_plan(engine, plan: Plan, inputs: Any) -> dict[str, Any]:
    """A run of ``plan`` (a workflow's, or a created graph's: functions/api/graph_routes.py), checked
    against the registry and the deployment's limits as they are now."""
    missing = unregistered_refs(engine, plan)
    if missing:
        raise ApiError(400, f"workflow_ref '{missing[0]}' is not registered: POST /workflows first",
                       unregistered=missing)
    deprecated = deprecated_refs(engine, plan)
    if deprecated:
        raise ApiError(409, f"sub-workflow {_deprecated(deprecated[0])}", deprecated=deprecated[0].ref)
    refused = refused_by_deployment(engine, plan)
    if refused:
        raise ApiError(400, "invalid workflow", diagnostics=refused)
    if inputs is not None and not isinstance(inputs, dict):
        raise ApiError(400, "'input' must be a JSON object")
    try:
        run_id = engine.start_run(plan, inputs)
    except InputError as error:
        raise ApiError(400, f"invalid input: {error}") from error
    return {"run_id": run_id, "status": "RUNNING", "workflow_id": plan.workflow_id}
