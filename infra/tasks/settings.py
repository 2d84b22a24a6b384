"""What the task types need from the deployment's configuration, read once where the process is wired.

:meth:`TaskSettings.from_env` reads the environment variables template.yaml sets
(``LOOPLINE_PROVIDERS``, ``LOOPLINE_OPENAI_BASE_URL``, ``LOOPLINE_DB_<NAME>``, ...)
into typed, frozen values. It is called by the wiring (infra/wiring.py, local
mode, the engine's default) when the process starts: on Lambda that is the cold
start, and a function's environment cannot change after it anyway. Nothing below
the wiring reads ``os.environ``; providers get what they need from here.

Values whose mistakes belong to a task (a ``LOOPLINE_PROVIDERS`` entry that is not
``type=provider``, an egress entry that is not a host) are kept as written and
judged when a task uses them, so the task fails with ``ProviderConfigError``
rather than the process failing to start.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..sandbox.settings import DEFAULT_TASK_USER, SandboxSettings
from .base import PROVIDER_CONFIG_ERROR, TaskFailure
from .egress import EgressPolicy

ENVIRONMENTS = ("aws", "local")
DB_PREFIX = "LOOPLINE_DB_"


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS providers' clients go: ``LOOPLINE_AWS_ENDPOINT`` (LocalStack or another emulator),
    or LocalStack's own endpoints when ``LOOPLINE_TARGET=localstack``; the region as boto3 would find it."""

    endpoint: str | None = None
    localstack: bool = False
    region: str | None = None


@dataclass(frozen=True)
class LlmSettings:
    model: str | None = None  # LOOPLINE_LLM_MODEL: the model when a task names none
    # LOOPLINE_BEDROCK_MODELS: the ARNs template.yaml lets the worker call; None: unset (the role decides).
    bedrock_models: tuple[str, ...] | None = None
    bedrock_region: str | None = None
    openai_base_url: str = ""
    openai_api_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class MessagingSettings:
    email_from: str | None = None  # LOOPLINE_EMAIL_FROM: the sender when a task names none
    sms_enabled: bool = True  # LOOPLINE_SMS_ENABLED (template.yaml's SmsEnabled)
    voice_webhook_url: str = ""
    voice_webhook_token: str = field(default="", repr=False)
    approval_webhook_url: str = ""  # LOOPLINE_APPROVAL_WEBHOOK_URL: where approval requests are posted


@dataclass(frozen=True)
class TaskSettings:
    providers: str = ""  # LOOPLINE_PROVIDERS as written: "email=ses,llm=openai"
    environment: str = "local"  # LOOPLINE_PROVIDER_DEFAULTS as written: whose defaults (aws or local)
    aws: AwsSettings = AwsSettings()
    llm: LlmSettings = LlmSettings()
    messaging: MessagingSettings = MessagingSettings()
    chromium: str | None = None  # LOOPLINE_CHROMIUM: the browser binary, else the usual paths
    file_root: str | None = None  # LOOPLINE_FILE_ROOT, else files.default_root()
    task_user: str = DEFAULT_TASK_USER  # LOOPLINE_TASK_USER: whom code tasks run as when the engine is root
    task_python: str = ""  # LOOPLINE_TASK_PYTHON: the interpreter of python and custom tasks
    python_packages: str | None = None  # LOOPLINE_PYTHON_PACKAGES: what python tasks' requirements import
    # LOOPLINE_CODE_TOOLS_IN_WORKER=true: on AWS, an llm task's code tools may run in the worker's sandbox
    code_tools_in_worker: bool = False
    egress_allow: str = ""  # LOOPLINE_EGRESS_ALLOW as written (egress.py)
    custom_modules: str = ""  # LOOPLINE_CUSTOM_MODULES as written
    # LOOPLINE_DB_<NAME> -> URL, by variable name (database.py); repr hides them: a URL may hold a password.
    databases: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TaskSettings:
        """From a process environment (the wiring passes ``os.environ``)."""
        listed = env.get("LOOPLINE_BEDROCK_MODELS")
        return cls(
            providers=env.get("LOOPLINE_PROVIDERS") or "",
            environment=env.get("LOOPLINE_PROVIDER_DEFAULTS") or "local",
            aws=AwsSettings(endpoint=env.get("LOOPLINE_AWS_ENDPOINT") or None,
                            localstack=env.get("LOOPLINE_TARGET") == "localstack",
                            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None),
            llm=LlmSettings(model=env.get("LOOPLINE_LLM_MODEL") or None,
                            bedrock_models=None if listed is None else
                            tuple(arn.strip() for arn in listed.split(",") if arn.strip()),
                            bedrock_region=env.get("LOOPLINE_BEDROCK_REGION") or None,
                            openai_base_url=env.get("LOOPLINE_OPENAI_BASE_URL") or "",
                            openai_api_key=env.get("LOOPLINE_OPENAI_API_KEY") or ""),
            messaging=MessagingSettings(email_from=env.get("LOOPLINE_EMAIL_FROM") or None,
                                        sms_enabled=env.get("LOOPLINE_SMS_ENABLED", "true") == "true",
                                        voice_webhook_url=env.get("LOOPLINE_VOICE_WEBHOOK_URL") or "",
                                        voice_webhook_token=env.get("LOOPLINE_VOICE_WEBHOOK_TOKEN") or "",
                                        approval_webhook_url=env.get("LOOPLINE_APPROVAL_WEBHOOK_URL") or ""),
            chromium=env.get("LOOPLINE_CHROMIUM") or None,
            file_root=(sandbox := SandboxSettings.from_env(env)).file_root,
            task_user=sandbox.task_user,
            task_python=sandbox.task_python,
            python_packages=sandbox.python_packages,
            code_tools_in_worker=env.get("LOOPLINE_CODE_TOOLS_IN_WORKER", "").strip().lower() == "true",
            egress_allow=env.get("LOOPLINE_EGRESS_ALLOW") or "",
            custom_modules=env.get("LOOPLINE_CUSTOM_MODULES") or "",
            databases={k: v for k, v in env.items() if k.startswith(DB_PREFIX)},
        )

    def provider_environment(self) -> str:
        """``aws`` or ``local``: whose default providers serve the types LOOPLINE_PROVIDERS does not name."""
        value = self.environment.strip().lower()
        if value not in ENVIRONMENTS:
            raise TaskFailure(PROVIDER_CONFIG_ERROR,
                              f"LOOPLINE_PROVIDER_DEFAULTS={value!r}: expected one of {', '.join(ENVIRONMENTS)}")
        return value

    def chosen_providers(self) -> dict[str, str]:
        """``LOOPLINE_PROVIDERS`` as type -> provider name."""
        chosen: dict[str, str] = {}
        for part in self.providers.split(","):
            part = part.strip()
            if not part:
                continue
            kind, sep, name = part.partition("=")
            if not sep or not kind.strip() or not name.strip():
                raise TaskFailure(PROVIDER_CONFIG_ERROR,
                                  f"LOOPLINE_PROVIDERS: {part!r} is not of the form type=provider")
            chosen[kind.strip().lower()] = name.strip().lower()
        return chosen

    def egress(self) -> EgressPolicy:
        return EgressPolicy.parse(self.egress_allow)

    @property
    def sandbox(self) -> SandboxSettings:
        """What code tasks run with when they run on this machine (the ``subprocess`` provider)."""
        return SandboxSettings(file_root=self.file_root, task_user=self.task_user, task_python=self.task_python,
                               python_packages=self.python_packages)


def default_file_root() -> str:
    """Where the file root is when LOOPLINE_FILE_ROOT is not set (as named, before any symlink is followed)."""
    return os.path.join(tempfile.gettempdir(), "loopline-files")
