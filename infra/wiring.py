"""Builds the engine a handler uses from its environment (the variables template.yaml sets).

On AWS every value comes from the function's environment. The local runtime
sets the same variables from the translated template and may install a
movable clock; it never replaces the adapters, so handlers run the same code.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import replace
from typing import Any, Callable

import boto3
from botocore.config import Config

from statemachine.history import Retention
from statemachine.limits import DeploymentLimits

from .aws.dynamo_history import DynamoHistory
from .aws.dynamo_listing import DynamoRunQueries
from .aws.dynamo_store import DynamoStore
from .aws.emf_metrics import EmfMetrics
from .aws.payloads import S3Payloads
from .aws.sqs_queue import MAX_DELAY, SqsQueue
from .aws.task_dispatch import LambdaDispatch
from .aws.timers import AwsTimers
from .clock import SystemClock
from .engine import Engine, EngineSettings
from .history import HistoryRecorder
from .links import LinkSigner
from .listing import RunQueries
from .ports import Clock, History, Metrics, TaskContext
from .python_packages import provided_packages
from .sandbox.settings import SandboxSettings
from .task_context import StoreTaskContext
from .tasks.registry import TaskTypes

# A client of the service named at run time: the stubs type boto3.client per literal service name.
_new_client: Callable[..., Any] = boto3.client
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})
_lock = threading.Lock()
_engine: Engine | None = None
_history: History | None = None
_context: TaskContext | None = None  # HistoryFunction's task labels: its caches live as long as the container
_metrics: Metrics | None = None  # local runtime only: an in-process registry (else EMF, built per use)
_clock: Clock | None = None
_sqs_max_delay: int = MAX_DELAY
# Local runtime only: what stands in for the Lambda service (loopline/embedded/async_lambda.py), hooked on
# the clients the engine makes, as moto stands in for the other services.
_lambda_hook: Callable | None = None
# Local runtime only: checks each call against the calling function's role in template.yaml
# (loopline/embedded/iam.py), as IAM would; a botocore before-parameter-build handler taking the region.
_call_check: Callable | None = None
# Local runtime only: given each client the engine makes (loopline/doorbell.py registers the handlers
# that wake the local pumps when a message is sent or a schedule made; on AWS the services need no telling).
_client_hook: Callable[[Any], Any] | None = None


def use_clock(clock: Clock, sqs_max_delay: int = MAX_DELAY) -> None:
    """Local runtime only: drive timers and leases by ``clock``."""
    global _clock, _sqs_max_delay, _engine
    with _lock:
        _clock, _sqs_max_delay, _engine = clock, sqs_max_delay, None


def use_lambda_service(hook: Callable | None) -> None:
    """Local runtime only: ``hook`` answers the engine's Lambda requests (a botocore before-send handler)."""
    global _lambda_hook, _engine
    with _lock:
        _lambda_hook, _engine = hook, None


def use_call_check(check: Callable | None) -> None:
    """Local runtime only: ``check(region, params, model)`` sees every call before it is made."""
    global _call_check, _engine
    with _lock:
        _call_check, _engine = check, None


def use_client_hook(hook: Callable[[Any], Any] | None) -> None:
    """Local runtime only: ``hook(client)`` is given every client the engine makes, once made."""
    global _client_hook, _engine
    with _lock:
        _client_hook, _engine = hook, None


def reset() -> None:
    global _engine, _history, _clock, _sqs_max_delay, _lambda_hook, _call_check, _client_hook, _metrics, _context
    with _lock:
        _engine, _history, _clock, _sqs_max_delay, _lambda_hook, _call_check = None, None, None, MAX_DELAY, None, None
        _client_hook, _metrics, _context = None, None, None


def _checked(client):
    if _call_check is not None:
        client.meta.events.register("before-parameter-build", functools.partial(_call_check, client.meta.region_name))
    if _client_hook is not None:
        _client_hook(client)
    return client


def deployment_limits() -> DeploymentLimits:
    """What this deployment lets a workflow ask for: template.yaml's CustomModules, passed to the
    functions as LOOPLINE_CUSTOM_MODULES (unset or empty: no custom module at all), and the distributions
    in LOOPLINE_PYTHON_PACKAGES that python tasks' requirements may name (unset: none)."""
    limits = DeploymentLimits.from_setting(os.environ.get("LOOPLINE_CUSTOM_MODULES"))
    packages = os.environ.get("LOOPLINE_PYTHON_PACKAGES")
    return replace(limits, python_packages=provided_packages(packages)) if packages else limits


def retention() -> Retention:
    """How long finished runs and history are kept: template.yaml's RetentionDays, passed to the functions
    as LOOPLINE_RETENTION_DAYS (unset: 30 days; 0: for ever)."""
    text = os.environ.get("LOOPLINE_RETENTION_DAYS", "").strip() or "30"
    if not text.isdigit():
        raise ValueError(f"LOOPLINE_RETENTION_DAYS must be a whole number of days, not {text!r}")
    return Retention(int(text))


def exposed_env() -> dict[str, str]:
    names = [n.strip() for n in os.environ.get("LOOPLINE_EXPOSED_ENV", "").split(",") if n.strip()]
    return {name: os.environ[name] for name in names if name in os.environ}


def _client(service: str):
    endpoint = os.environ.get("LOOPLINE_AWS_ENDPOINT")  # LocalStack or another emulator, by configuration
    if not endpoint and os.environ.get("LOOPLINE_TARGET") == "localstack":
        import localstack_client.config

        endpoint = localstack_client.config.get_service_endpoint(service)
    # Throttling and 5xx answers are retried with backoff (botocore's standard mode) before an
    # error reaches the engine, which then leaves the message to SQS's redelivery.
    client = _new_client(service, endpoint_url=endpoint or None, config=_RETRIES)
    if _lambda_hook is not None and service == "lambda":
        # First: the request is answered before moto's stubber (also a before-send handler) sees it.
        client.meta.events.register_first("before-send", _lambda_hook)
    return _checked(client)


def _presigner():
    """The S3 client that signs the task runner's URLs: they must work where the runner runs (on AWS
    the default endpoint; locally LOOPLINE_PRESIGN_ENDPOINT, the embedded runtime's S3 server)."""
    endpoint = os.environ.get("LOOPLINE_PRESIGN_ENDPOINT") or os.environ.get("LOOPLINE_AWS_ENDPOINT")
    return _checked(boto3.client("s3", endpoint_url=endpoint or None,
                                 config=_RETRIES.merge(Config(signature_version="s3v4"))))


def _link_key() -> bytes:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider(boto3_client=_client("secretsmanager"))
    secret = provider.get(os.environ["LOOPLINE_LINK_KEY_SECRET"], max_age=300)
    if isinstance(secret, str):
        return secret.encode()
    if isinstance(secret, bytes):
        return secret
    raise ValueError("the link-signing key secret holds neither text nor bytes")


def build_engine() -> Engine:
    env = os.environ
    clock = _clock or SystemClock()
    # The claim check: values over the item/message limits go to this bucket (template.yaml's PayloadBucket).
    bucket = env.get("LOOPLINE_PAYLOAD_BUCKET")
    s3 = _client("s3") if bucket else None
    payloads = S3Payloads(s3, bucket) if bucket else None
    queue = SqsQueue(_client("sqs"), env["LOOPLINE_READY_QUEUE_URL"], payloads)
    timers = AwsTimers(queue, _client("scheduler"), env["LOOPLINE_READY_QUEUE_ARN"], env["LOOPLINE_SCHEDULE_GROUP"],
                       env["LOOPLINE_SCHEDULER_ROLE_ARN"], clock, _sqs_max_delay)
    dynamodb = _client("dynamodb")
    store = DynamoStore(dynamodb, env["LOOPLINE_RUNS_TABLE"], env["LOOPLINE_DEFINITIONS_TABLE"],
                        env["LOOPLINE_TOKENS_TABLE"], payloads)
    runner = env.get("LOOPLINE_TASK_RUNNER_FUNCTION")
    # Code tasks go to the task-runner function (infra/engine/code_tasks.py).
    dispatch = LambdaDispatch(_client("lambda"), runner, s3, _presigner() if bucket else None, bucket) \
        if runner else None
    settings = EngineSettings(public_url=env.get("LOOPLINE_PUBLIC_URL", ""),
                              lease_seconds=float(env.get("LOOPLINE_LEASE_SECONDS", "60")), env=exposed_env(),
                              safety_delay_seconds=int(env.get("LOOPLINE_SAFETY_DELAY_SECONDS", "60")),
                              custom_modules=deployment_limits().custom_modules, retention_days=int(retention().days),
                              sandbox=SandboxSettings.from_env(env))
    # The task types' settings (providers, endpoints, file root, egress allow list) are read here, once per
    # container: a Lambda function's environment does not change while it runs.
    queries = DynamoRunQueries(dynamodb, env["LOOPLINE_RUNS_TABLE"], payloads)
    return Engine(store, queue, timers, LinkSigner(_link_key()), clock, settings, dispatch=dispatch,
                  task_types=TaskTypes.from_env(env), queries=queries)


def get_engine() -> Engine:
    """The engine for this process, built once (a Lambda container reuses it across invocations)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = build_engine()
        return _engine


def get_history() -> History:
    """The run history and audit log (template.yaml's HistoryTable), built once per container."""
    global _history
    with _lock:
        if _history is None:
            _history = DynamoHistory(_client("dynamodb"), os.environ["LOOPLINE_HISTORY_TABLE"], retention())
        return _history


def get_metrics() -> Metrics:
    """Where the history consumer's metrics go: EMF on stdout in the function's namespace (template.yaml
    sets POWERTOOLS_METRICS_NAMESPACE), or what the local runtime installed with :func:`use_metrics`."""
    with _lock:
        if _metrics is not None:
            return _metrics
    return EmfMetrics(os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Loopline")


def use_metrics(metrics: Metrics | None) -> None:
    """Local runtime only: the history consumer feeds ``metrics`` (the registry `GET /metrics` reads)."""
    global _metrics
    with _lock:
        _metrics = metrics


def get_run_queries() -> RunQueries:
    """GaugesFunction's reading of the runs in progress (infra/gauges.py): the runs table's status index
    only (its role may Query that index and nothing else), no payload bucket (a summary is the index's
    few projected fields)."""
    return DynamoRunQueries(_client("dynamodb"), os.environ["LOOPLINE_RUNS_TABLE"])


def get_task_context() -> TaskContext:
    """HistoryFunction's look-up of a task's workflow and type, built once per container (its caches
    with it). It only reads runs and plans (``get_run``, ``get_plan``): the function's role allows
    GetItem on the runs and definitions tables and reading payloads/ (a large plan or run value is a
    claim there), and no token table or write, so the store is given no token table."""
    global _context
    with _lock:
        if _context is None:
            env = os.environ
            bucket = env.get("LOOPLINE_PAYLOAD_BUCKET")
            # No payload cache: the context keeps what it needs of a run (two ids), so a claimed value it
            # loaded with the run (a large input) is never asked for again and need not be held.
            payloads = S3Payloads(_client("s3"), bucket, cache_bytes=0) if bucket else None
            store = DynamoStore(_client("dynamodb"), env["LOOPLINE_RUNS_TABLE"], env["LOOPLINE_DEFINITIONS_TABLE"],
                                tokens_table="", payloads=payloads)
            _context = StoreTaskContext(store)
        return _context


def get_recorder() -> HistoryRecorder:
    """HistoryFunction's consumer of the runs table's stream."""
    return HistoryRecorder(get_history(), get_metrics(), get_task_context())


def use_history(history: History) -> None:
    """Local mode only: the api handler reads and writes this history (in memory)."""
    global _history
    with _lock:
        _history = history


def use_engine(engine: Engine) -> None:
    """Local mode only: handlers drive an engine on in-memory adapters (no AWS, no emulator)."""
    global _engine
    with _lock:
        _engine = engine
