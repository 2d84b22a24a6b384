"""Shared fixtures: event files from events/, a fresh embedded stack per test, local mode."""

from __future__ import annotations

import copy
import json
import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REGION = "us-east-1"

os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(autouse=True)
def _own_loopline_home(tmp_path_factory, monkeypatch):
    """Each test keeps local mode's state (and the link key) in a directory of its own: `--local`
    persists to $LOOPLINE_HOME, else ./.loopline, which every test run in the checkout would share.
    A test of the default removes the variable itself (tests/e2e/test_local_state_cli.py)."""
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path_factory.mktemp("loopline-home")))


@pytest.fixture
def runs_table(monkeypatch: pytest.MonkeyPatch):
    """A fresh moto with one table keyed as template.yaml's runs table (pk, sk), named "runs"."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield db


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def api_event(name: str, path_params: dict | None = None, body=None, headers: dict | None = None) -> dict:
    """An API Gateway proxy event from events/, with its placeholders filled in."""
    event = copy.deepcopy(load_event(name))
    for key, value in (path_params or {}).items():
        placeholder = key.upper() if key != "run_id" else "RUN_ID"
        event["path"] = event["path"].replace(placeholder, value)
        event["requestContext"]["path"] = event["requestContext"]["path"].replace(placeholder, value)
        event["pathParameters"][key] = value
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    for key, value in (headers or {}).items():
        event["headers"][key] = value
        event["multiValueHeaders"][key] = [value]
    return event


def sqs_event(*messages: dict) -> dict:
    template = load_event("sqs_exec.json")["Records"][0]
    records = []
    for i, message in enumerate(messages):
        record = copy.deepcopy(template)
        record["messageId"] = f"msg-{i}"
        record["body"] = json.dumps(message)
        records.append(record)
    return {"Records": records}


def compile_yaml(text: str, filename: str = "test.yaml"):
    from statemachine.compiler import compile_workflow

    return compile_workflow(textwrap.dedent(text), filename)


@pytest.fixture
def clock():
    from infra.clock import ManualClock

    return ManualClock()


@pytest.fixture
def aws():
    """moto in-process with template.yaml's resources; visibility timeout 1 s so redeliveries come fast."""
    from loopline.embedded.runtime import EmbeddedAws

    stack = EmbeddedAws(redelivery_seconds=1)
    yield stack
    stack.stop()


@pytest.fixture
def runtime(aws, clock):
    from loopline.embedded.runtime import LocalRuntime

    rt = LocalRuntime(aws, clock=clock)
    yield rt
    rt.stop()


@pytest.fixture
def local(clock):
    """Local mode; code tasks run inline (at once, in the dispatching thread), so tests are deterministic."""
    from loopline.memory.local_mode import LocalMode

    mode = LocalMode(clock=clock, inline_code=True)
    yield mode
    mode.close()


def count_actions(monkeypatch, note) -> None:
    """Call ``note(run_id, task_id, loop_index)`` before every task action, wherever it runs: in the
    worker (a task type's provider) or in the task runner (a code task's code). Both are wrapped,
    the real ones still run."""
    import infra.dispatch.runner as runner
    from infra.tasks.registry import TaskTypes

    real_type, real_code = TaskTypes.run, runner.run_code

    def in_worker(types, node, config, run, scope, *rest, **options):
        note(run.run_id, node.id, (scope.roots.get("loop") or {}).get("index"))
        return real_type(types, node, config, run, scope, *rest, **options)

    def in_runner(request, settings):
        note(request.run_id, request.task_id, (request.namespace.get("loop") or {}).get("index"))
        return real_code(request, settings)

    monkeypatch.setattr(TaskTypes, "run", in_worker)
    monkeypatch.setattr(runner, "run_code", in_runner)


@pytest.fixture
def actions(monkeypatch):
    """The ids of the task actions that ran, in order (handlers and the task runner run in the test's process)."""
    ran: list[str] = []
    count_actions(monkeypatch, lambda run_id, task_id, index: ran.append(task_id))
    return ran
