"""What can be checked of each task type's config before a run (docs/task-types.md).

Each model is named by its type's entry in statemachine/task_types.py. Only the
keys named here are checked; other keys are left to the type's runner
(extra="allow").

Only literal values are judged: a value holding ``${`` is computed at run time and
left to the provider, which checks it again (a path escaping the file root, say).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Annotated, Any

from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from statemachine.dsl import ApprovalConfig, duration_or_error, matching


def _literal(value: Any) -> bool:
    return not (isinstance(value, str) and "${" in value)


class _Config(BaseModel):
    model_config = ConfigDict(extra="allow")


def _need(kind: str, config: BaseModel, *names: str) -> None:
    for name in names:
        if getattr(config, name, None) in (None, "", []):
            raise PydanticCustomError(kind, "a {kind} task needs 'config.{name}'", {"kind": kind, "name": name})


class DatabaseConfig(_Config):
    connection: Any = None
    query: Any = None

    @model_validator(mode="after")
    def _check(self) -> "DatabaseConfig":
        _need("database", self, "connection", "query")
        if isinstance(self.query, str) and "${" in self.query:
            raise PydanticCustomError("database", "SQL must not be built from data: write :name in the query and "
                                                  "pass the value in 'parameters'")
        return self


FILE_ACTIONS = ("read", "write", "copy", "move", "delete", "list", "exists")


def _escapes(path: Any) -> bool:
    if not isinstance(path, str) or not _literal(path):
        return False
    return path.startswith("/") or posixpath.normpath(path).split("/")[0] == ".."


class FileConfig(_Config):
    action: Any = "read"
    path: Any = None
    destination: Any = None

    @model_validator(mode="after")
    def _check(self) -> "FileConfig":
        if _literal(self.action) and self.action not in FILE_ACTIONS:
            raise PydanticCustomError("file", "unknown file action '{action}' (expected one of: {actions})",
                                      {"action": self.action, "actions": ", ".join(FILE_ACTIONS)})
        if self.action != "list":
            _need("file", self, "path")
        if self.action in ("copy", "move"):
            _need("file", self, "destination")
        for value in (self.path, self.destination):
            if _escapes(value):
                raise PydanticCustomError("file", "path '{path}' leaves the file root (no absolute paths, no '..')",
                                          {"path": value})
        return self


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HttpConfig(_Config):
    url: Any = None
    method: Any = "GET"

    @model_validator(mode="after")
    def _check(self) -> "HttpConfig":
        _need("http", self, "url")
        if isinstance(self.url, str) and _literal(self.url) and not self.url.startswith(("http://", "https://")):
            raise PydanticCustomError("http", "an http task's url must start with http:// or https://")
        if isinstance(self.method, str) and _literal(self.method) and self.method.upper() not in HTTP_METHODS:
            raise PydanticCustomError("http", "unknown HTTP method '{method}'", {"method": self.method})
        return self


class ShellConfig(_Config):
    command: Any = None

    @model_validator(mode="after")
    def _check(self) -> "ShellConfig":
        # A missing command is the provider's error at run time (ShellError); a written one must split.
        if isinstance(self.command, str) and _literal(self.command):
            try:
                shlex.split(self.command)
            except ValueError as exc:
                raise PydanticCustomError("shell", "cannot split the command: {error}", {"error": str(exc)}) from exc
        return self


class LlmConfig(_Config):
    prompt: Any = None
    response_format: Any = None

    @model_validator(mode="after")
    def _check(self) -> "LlmConfig":
        _need("llm", self, "prompt")
        if isinstance(self.response_format, dict):
            try:
                Draft202012Validator.check_schema(self.response_format)
            except SchemaError as exc:
                raise PydanticCustomError("llm", "response_format is not a JSON Schema: {error}",
                                          {"error": exc.message}) from exc
        return self


class EmailConfig(_Config):
    to: Any = None

    @model_validator(mode="after")
    def _check(self) -> "EmailConfig":
        _need("email", self, "to")
        return self


class SmsConfig(_Config):
    to: Any = None
    body: Any = None

    @model_validator(mode="after")
    def _check(self) -> "SmsConfig":
        _need("sms", self, "to", "body")
        return self


class VoiceConfig(_Config):
    to: Any = None
    message: Any = None

    @model_validator(mode="after")
    def _check(self) -> "VoiceConfig":
        _need("voice", self, "to", "message")
        return self


class BrowserConfig(_Config):
    url: Any = None
    path: Any = None

    @model_validator(mode="after")
    def _check(self) -> "BrowserConfig":
        _need("browser", self, "url")
        if _escapes(self.path):
            raise PydanticCustomError("browser", "path '{path}' leaves the file root (no absolute paths, no '..')",
                                      {"path": self.path})
        return self



# --- code-running types (python, custom; shell above) -------------------------------

# `code: clean.py` (seed 003: "code: string | file_path"): one line, a relative path ending in .py. As Python
# source it would be a division of attributes, never a program anyone means.
CODE_FILE = re.compile(r"/?(?:[\w.-]+/)*[\w.-]*\w\.py")


def code_file(code: Any) -> str | None:
    """The file ``code`` names, when it names one rather than holding the source."""
    return code if isinstance(code, str) and CODE_FILE.fullmatch(code.strip()) and "\n" not in code else None


class PythonConfig(_Config):
    code: str | None = None
    requirements: list[str] | None = None  # checked against what the deployment provides (admission.py)

    @field_validator("code")
    @classmethod
    def _source(cls, code: str | None) -> str | None:
        if (name := code_file(code)) is not None:
            raise PydanticCustomError("python", "code '{name}' names a file, which is read next to the workflow file "
                                                "by loopline's CLI (validate, run, workflows register); a workflow "
                                                "sent as text must carry the code itself", {"name": name})
        return code

    @model_validator(mode="after")
    def _needs_code(self) -> "PythonConfig":
        if self.code is None:
            raise PydanticCustomError("python", "a python task needs 'config.code' (Python source)")
        return self


class CustomConfig(_Config):
    # A computed handler (``${...}``) is refused by the deployment check, which says why (statemachine/admission.py).
    handler: Annotated[str | None, matching(r"^(?:[A-Za-z_][\w.]*:[A-Za-z_]\w*|.*\$\{.*)$", "handler",
                                            "'module:function'")] = None

    @model_validator(mode="after")
    def _needs_handler(self) -> "CustomConfig":
        if self.handler is None:
            raise PydanticCustomError("custom", "a custom task needs 'config.handler' ('module:function')")
        return self


# --- durable types (the engine's own waits) -------------------------------------------

def _runtime_duration(value: Any) -> Any:
    # A wait or callback duration may be computed at run time (`${inputs.delay}`).
    if isinstance(value, str) and "${" in value:
        return value
    duration_or_error(value)
    return value


RuntimeDuration = Annotated[Any, BeforeValidator(_runtime_duration)]


CALLBACK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def callback_id_error(value: Any, what: str = "callback_id") -> str | None:
    """Why ``value`` cannot name a callback or an event (a path segment of POST /runs/{id}/callbacks/{name}
    and POST /runs/{id}/events/{name})."""
    if value is None or (isinstance(value, str) and CALLBACK_ID.fullmatch(value)):
        return None
    return (f"{what} {str(value)[:40]!r} must be 1 to 128 letters, digits or . _ : @ -, starting with a "
            "letter or digit")


class WaitConfig(_Config):
    duration: RuntimeDuration = None
    until: Any = None
    event: Any = None  # wait for POST /runs/{id}/events/{event} instead of a time
    timeout: RuntimeDuration = None  # an event's: then EventTimeout

    @model_validator(mode="after")
    def _one_of(self) -> "WaitConfig":
        if self.event is not None:
            if self.duration is not None or self.until is not None:
                raise PydanticCustomError("wait", "a wait task waits for 'config.event' or for a time "
                                                  "('duration', 'until'), not both: bound an event with 'timeout'")
            if _literal(self.event) and (why := callback_id_error(self.event, "event")):
                raise PydanticCustomError("wait", why)
            return self
        if self.timeout is not None:
            raise PydanticCustomError("wait", "'config.timeout' bounds an event wait: this wait has no 'event'")
        if self.duration is None and self.until is None:
            raise PydanticCustomError("wait", "a wait task needs 'config.duration', 'config.until' or 'config.event'")
        return self


class CallbackConfig(_Config):
    timeout: RuntimeDuration = None
    callback_id: Any = None  # a caller-chosen name, unique among the run's waiting callbacks

    @model_validator(mode="after")
    def _named(self) -> "CallbackConfig":
        if _literal(self.callback_id) and (why := callback_id_error(self.callback_id)):
            raise PydanticCustomError("callback_id", why)
        return self


class ApprovalTaskConfig(ApprovalConfig):
    pass
