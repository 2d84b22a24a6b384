"""The shapes the HTTP API documents in GET /openapi.json: request bodies, answers, the error.

The handlers do not validate requests against these models (Powertools' validation would answer
its own 422 shape before `_json_only` and `parse_body` run, and the contract's errors are 4xx
`{"error": ...}`): the models describe what the handlers already accept and answer, and
tests/e2e/test_openapi_fuzz.py holds every answer of a real `loopline dev` to them. Answers may
carry more fields than listed (extra="allow"), so adding a field never breaks a client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from statemachine.status import RunStatus, TaskStatus

JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"
SIGV4 = "sigv4"  # the security scheme of the routes template.yaml puts behind AWS_IAM
QUERY_KEY = "x-loopline-query"  # a route's query parameters, until openapi.py puts them in its parameters


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------ errors


class ErrorBody(_Open):
    """Every 4xx and 5xx the API answers, from the handler or from the gateway in front of it."""

    error: str = Field(description="what was wrong, in one sentence")


# ------------------------------------------------------------------ requests (flat: inlined as they are)


class StartRunRequest(BaseModel):
    workflow: str | dict[str, Any] = Field(
        description="the workflow's YAML text (or the same as a JSON object), or a registered id (ID or ID@VERSION)")
    input: dict[str, Any] | None = Field(None, description="the run's input, checked against inputs.schema")


class RegisterWorkflowRequest(BaseModel):
    workflow: str | dict[str, Any] = Field(description="the workflow's YAML text (or the same as a JSON object)")
    allow_breaking: bool = Field(False, description="register it although it breaks the previous version "
                                                    "without a higher major number; kept in the version's "
                                                    "record and the audit log (docs/versions.md)")


class DecisionRequest(BaseModel):
    decision: Literal["APPROVED", "REJECTED"]
    comments: str | None = None
    approver: str | None = Field(None, description="in whose name, when several approvers are asked")
    data: Any = Field(None, description="any JSON value, kept in the approval's output as `data`")


class ApproverDecisionRequest(BaseModel):
    decision: Literal["APPROVED", "REJECTED"]
    comments: str | None = None
    approver: str | None = Field(None, description="in whose name; required when several are asked")


class MigrateRequest(BaseModel):
    to: str = Field(description="the version to move the run to: ID@VERSION (or ID@latest)")
    dry_run: bool = Field(False, description="only say what the migration would do")
    reason: str | None = Field(None, description="why: kept in the audit log and the run's history")


class ReasonRequest(BaseModel):
    reason: str | None = Field(None, description="why: kept in the audit log (and a cancel's in the run's history)")


class RewindRequest(BaseModel):
    to: str = Field(description="the task to go back to: it and everything after it run again")
    reason: str | None = Field(None, description="why: kept in the audit log and the run's history")
    compensate: bool = Field(False, description="first run the compensations of the discarded tasks that "
                                                 "completed and declare one")
    iteration: int | None = Field(None, ge=0, description="for a task of a loop's body: the iteration to reopen "
                                                          "(default: the last one that ran)")


class DecisionForm(BaseModel):
    """The approval page's own form post (the only non-JSON body the API takes)."""

    decision: Literal["APPROVED", "REJECTED"]
    comments: str | None = None
    csrf: str = Field(description="the value the approval page put in its form")


# ------------------------------------------------------------------ answers


class TaskError(_Open):
    type: str
    message: str


class TaskView(_Open):
    status: TaskStatus
    output: Any = None
    attempts: int
    error: TaskError | None = None
    printed: str | None = Field(None, description="what a code task printed, in its last attempt")


class LinkEntry(_Open):
    task_id: str
    url: str | None = Field(None, description="absent on AWS from GET /runs/{id}; see GET /runs/{id}/links")
    deadline: str | None = None
    callback_id: str | None = Field(None, description="a callback's caller-chosen name, when it has one: "
                                                      "POST /runs/{id}/callbacks/{callback_id}")
    event: str | None = Field(None, description="the event a wait task waits for: POST /runs/{id}/events/{event}")


class RunView(_Open):
    run_id: str
    workflow_id: str
    status: RunStatus
    outputs: Any = None
    error: TaskError | None = None
    tasks: dict[str, TaskView]
    approvals: list[LinkEntry]
    callbacks: list[LinkEntry]
    refused_links: list[dict[str, Any]]
    refused_count: int
    created_at: str | None = None
    ended_at: str | None = None
    redrives: int


class RunStarted(_Open):
    run_id: str
    status: RunStatus
    workflow_id: str


class RunLinks(_Open):
    run_id: str
    approvals: list[LinkEntry]
    callbacks: list[LinkEntry]


class CancelResult(_Open):
    run_id: str
    status: RunStatus
    cancelled: bool


class ControlResult(_Open):
    run_id: str
    status: RunStatus
    changed: bool


class RewindResult(ControlResult):
    rewind: int = Field(description="the rewind's epoch (the run's redrive count once it reopened)")
    to: str = Field(description="the task it goes back to (a parallel block, for one of its members)")
    iteration: int | None = Field(None, description="for a task of a loop's body: the iteration it reopens")
    discarded: list[str] = Field(description="the tasks that run again: the one gone back to and all after it "
                                             "(in a reopened iteration, its body tasks' items: <task>@<loop>.<i>)")
    compensating: list[str] = Field(description="the discarded tasks whose compensations run first (compensate)")


class PendingApproval(_Open):
    run_id: str
    task_id: str
    approver: str
    title: str
    deadline: str | None = None


class ApprovalList(_Open):
    approvals: list[PendingApproval]


class DecisionAccepted(_Open):
    status: Literal["accepted"]
    run_id: str
    task_id: str
    decision: str
    outcome: str = Field(description="APPROVED, REJECTED, or PENDING while more decisions are needed")


class ApprovalInfo(_Open):
    run_id: str
    task_id: str
    workflow_id: str
    title: str
    approver: str | None = None
    approvers: list[str]
    required_approvals: int
    decisions_so_far: int
    deadline: str | None = None
    status: Literal["PENDING"]


class CallbackInfo(_Open):
    run_id: str
    task_id: str
    status: Literal["WAITING"]
    deadline: str | None = None


class CallbackAccepted(_Open):
    status: Literal["accepted"]
    run_id: str
    task_id: str


class EventAccepted(_Open):
    status: Literal["accepted"]
    run_id: str
    event: str
    task_ids: list[str] = Field(description="the tasks the event completed")


class Change(_Open):
    kind: str = Field(description="input_removed, task_renamed, ... (docs/versions.md)")
    impact: Literal["breaking", "compatible"]
    subject: str = Field(description="the input, output, setting or task it is about")
    detail: str


class CompatibilityReport(_Open):
    """What changed from one version to another, each change breaking or compatible."""

    workflow_id: str
    from_: str = Field(alias="from")
    to: str
    breaking: bool
    changes: list[Change]


class MigrationReport(_Open):
    """What a migration does with each task (allowed), or each task that blocks it and why (refused)."""

    workflow_id: str
    from_: str = Field(alias="from")
    to: str
    allowed: bool
    tasks: list[dict[str, Any]] | None = Field(None, description="allowed: {task, action, status, renamed_from?}; "
                                                                 "action keep, keep_waiting, re_evaluate, add or drop")
    blockers: list[dict[str, Any]] | None = Field(None, description="refused: {task, status, reason}")


class MigrationResult(_Open):
    run_id: str
    status: RunStatus
    dry_run: bool
    allowed: bool
    changed: bool = Field(description="true: queued (202); the worker moves the run")
    report: MigrationReport
    lines: list[str] = Field(description="the report as the CLI prints it")


class BulkMigrationResult(_Open):
    workflow_id: str
    version: str
    to: str
    dry_run: bool
    runs: list[MigrationResult] = Field(description="one per run of the version that had not ended")


class WorkflowVersion(_Open):
    workflow_id: str
    version: str
    hash: str
    registered_at: str | None = Field(None, description="null for a version registered before this was kept")
    changelog: str = Field("", description="the file's metadata.changelog")
    compared_with: str | None = Field(None, description="the previous version its report was computed against")
    breaking_allowed: list[str] = Field(default_factory=list,
                                        description="breaking changes it was registered with under allow_breaking")
    deprecated: bool = False
    deprecated_at: str | None = None
    deprecation: str = Field("", description="why it was deprecated")


class WorkflowRegistered(WorkflowVersion):
    created: bool = Field(description="false: the same content was registered before (an idempotent 200)")
    report: CompatibilityReport | None = Field(description="against the previous version; null for the first")


class WorkflowList(_Open):
    workflows: list[WorkflowVersion]


class Plan(_Open):
    """The compiled plan (`loopline compile` prints the same JSON)."""

    workflow_id: str
    version: str
    hash: str


class OpenApiDocument(_Open):
    openapi: str
    paths: dict[str, Any]


# ------------------------------------------------------------------ one route's description


ERROR_REF = "#/components/schemas/ErrorBody"
_ERROR_WHY = {400: "bad input", 403: "refused", 404: "no such run, workflow or link", 409: "the state forbids it",
              410: "the link was used or expired", 413: "the body is too large",
              415: "the body is not application/json"}


def body(model: type[BaseModel], *, form: type[BaseModel] | None = None, required: bool = True) -> dict[str, Any]:
    """A request body for `openapi_extensions` (Powertools derives one only from validated parameters,
    which this API does not use). The models are flat, so their schemas inline without references."""
    content = {JSON: {"schema": model.model_json_schema()}}
    if form is not None:
        content[FORM] = {"schema": form.model_json_schema()}
    return {"requestBody": {"required": required, "content": content}}


def route(summary: str, ok: tuple[int, type[BaseModel]] | None, *, errors: tuple[int, ...] = (),
          tags: tuple[str, ...] = (), signed: bool = True, html: bool = False,
          extra: dict[int, str] | None = None, request: dict[str, Any] | None = None,
          query: tuple[tuple[str, str], ...] = (), also_ok: tuple[int, str] | None = None) -> dict[str, Any]:
    """The keyword arguments of one `app.get`/`app.post`: what it answers, which errors, and whether
    AWS wants the call signed (template.yaml's AWS_IAM default) or the link's token is the credential.
    ``also_ok``: another success status answered with the same model, and when."""
    responses: dict[int, Any] = {}
    if ok is not None:
        content: dict[str, Any] = {JSON: {"model": ok[1]}}
        if html:
            content[HTML] = {"schema": {"type": "string"}}
        responses[ok[0]] = {"description": "done", "content": content}
        if also_ok is not None:
            responses[also_ok[0]] = {"description": also_ok[1], "content": {JSON: {"model": ok[1]}}}
    for status, why in (extra or {}).items():
        responses[status] = {"description": why}
    for status in sorted(errors):
        error_content: dict[str, Any] = {JSON: {"model": ErrorBody}}
        if html and status != 415:
            error_content[HTML] = {"schema": {"type": "string"}}
        responses[status] = {"description": _ERROR_WHY.get(status, "refused"), "content": error_content}
    extensions = dict(request or {})
    if query:  # Powertools writes a path's own parameters over ours: openapi.py adds these to them
        extensions[QUERY_KEY] = [{"name": name, "in": "query", "required": False, "description": why,
                                  "schema": {"type": "string"}} for name, why in query]
    return {"summary": summary, "responses": responses, "tags": list(tags),
            "security": [{SIGV4: []}] if signed else None, "openapi_extensions": extensions or None}


def error_response(status: int) -> dict[str, Any]:
    return {"description": _ERROR_WHY.get(status, "refused"), "content": {JSON: {"schema": {"$ref": ERROR_REF}}}}


# ------------------------------------------------------------------ the run listing (docs/runs-api.md)


class RunSummary(_Open):
    run_id: str
    workflow_id: str
    status: RunStatus
    created_at: str
    ended_at: str | None = None
    duration_ms: int | None = None
    parent: str | None = Field(None, description="the parent run's id, for a sub-workflow's run")


class RunPage(_Open):
    runs: list[RunSummary]
    next_cursor: str | None = Field(description="pass as `cursor` with the same filters; null after the last page")
    limit: int


class RunCounts(_Open):
    workflow_id: str | None = None
    since: str | None = None
    until: str | None = None
    counts: dict[str, int] = Field(description="runs by status, every status present")
    total: int


class Iteration(_Open):
    index: int
    status: TaskStatus
    output: Any = None
    error: TaskError | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    tasks: dict[str, TaskStatus] = Field(description="the status of each body task in this iteration")


class IterationPage(_Open):
    run_id: str
    task_id: str
    total: int | None = Field(description="a for_each's item count; null for a while loop")
    iterations: list[Iteration]
    next_cursor: str | None


# ------------------------------------------------------------------ history and audit (docs/history.md)


class HistoryCause(_Open):
    kind: str
    name: str
    subject: str


class HistoryEntry(_Open):
    at: str
    seq: str
    kind: str = Field(description="task or run")
    item: str
    status: str
    previous: str | None = None
    attempt: int
    reason: str
    cause: HistoryCause | None = None


class HistoryPage(_Open):
    run_id: str
    entries: list[HistoryEntry]
    next_cursor: str | None


class AuditEntry(_Open):
    at: str
    request_id: str
    action: str
    actor: str
    source_ip: str
    user_agent: str
    target: str
    reason: str
    outcome: int = Field(description="the HTTP status the action was answered with")
    run_id: str = Field("", description="the run the action was about ('' for none)")
    workflow_id: str = Field("", description="the workflow it was about: the run's, or the one registered, "
                                             "deprecated or started ('' when none is known)")


class AuditPage(_Open):
    entries: list[AuditEntry]
    next_cursor: str | None
