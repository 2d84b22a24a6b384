"""Provider selection (LOOPLINE_PROVIDERS / LOOPLINE_PROVIDER_DEFAULTS), the outbox, and the
fixtures the other test_task_* modules share: an isolated task environment and a local HTTP server."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from infra.tasks import aws_clients, outbox
from infra.tasks.base import TaskFailure
from infra.tasks.common import TaskMeta
from infra.tasks.registry import TaskTypes
from infra.tasks.runtime import Provider
from statemachine.plan import Node

META = TaskMeta(task_id="t1", run_id="run-1", workflow_id="wf")
PROVIDER_ENV = ("LOOPLINE_PROVIDERS", "LOOPLINE_PROVIDER_DEFAULTS", "LOOPLINE_EMAIL_FROM", "LOOPLINE_AWS_ENDPOINT",
                "LOOPLINE_TARGET", "LOOPLINE_OPENAI_BASE_URL", "LOOPLINE_OPENAI_API_KEY", "LOOPLINE_LLM_MODEL",
                "LOOPLINE_VOICE_WEBHOOK_URL", "LOOPLINE_VOICE_WEBHOOK_TOKEN", "LOOPLINE_CHROMIUM",
                "LOOPLINE_CUSTOM_MODULES", "LOOPLINE_BEDROCK_REGION", "LOOPLINE_EGRESS_ALLOW")


@pytest.fixture
def task_env(monkeypatch, tmp_path):
    """No provider configuration from the machine, a fresh file root, an empty outbox, no cached clients."""
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "files"
    root.mkdir()
    monkeypatch.setenv("LOOPLINE_FILE_ROOT", str(root))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_REGION", raising=False)
    outbox.clear()
    aws_clients.reset()
    yield root
    outbox.clear()
    aws_clients.reset()


def task_types() -> TaskTypes:
    """The task types as the wiring builds them: settings read from the environment now."""
    return TaskTypes.from_env(os.environ)


def run_type(kind: str, config: dict[str, Any], task_id: str = "t1", timeout: float | None = None,
             raw: dict[str, Any] | None = None, types: TaskTypes | None = None):
    """Run one task type as the engine does (config already rendered), with the environment's settings
    as of this call (``types``: others); the raw result."""
    node = Node(id=task_id, type=kind, config=raw if raw is not None else config, timeout=timeout)

    class Run:
        run_id = "run-1"
        workflow_id = "wf"
        inputs: dict = {}
        variables: dict = {}

    return (types or task_types()).run(node, config, Run(), None, None).output


def failure(kind: str, config: dict[str, Any], **kwargs) -> TaskFailure:
    with pytest.raises(TaskFailure) as caught:
        run_type(kind, config, **kwargs)
    return caught.value


class LocalServer:
    """An HTTP server on 127.0.0.1 whose routes are ``(method, path) -> handler(request) -> (status, headers, body)``;
    every request is kept in ``requests`` as ``{method, path, headers, body}``. Loopback is denied to tasks
    by default: a test that calls it through a task type names it in LOOPLINE_EGRESS_ALLOW."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes | str]]] = {}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                server.requests.append(request)
                route = server.routes.get((self.command, path))
                status, headers, payload = route(request) if route else (404, {}, b"no route")
                data = payload.encode() if isinstance(payload, str) else payload
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that gave up (timeout tests): quiet
                pass

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.httpd.server_address[0]}:{self.port}"

    def json(self, method: str, path: str, value: Any, status: int = 200, headers: dict | None = None) -> None:
        self.routes[(method, path)] = lambda request: (
            status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(value))

    def text(self, method: str, path: str, value: str, status: int = 200, content_type: str = "text/plain") -> None:
        self.routes[(method, path)] = lambda request: (status, {"Content-Type": content_type}, value)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = LocalServer()
    yield srv
    srv.close()


# ---------------------------------------------------------------- settings


def test_missing_defaults_mean_local_and_aws_picks_the_aws_providers(task_env, monkeypatch):
    types = task_types()
    assert types.settings.provider_environment() == "local"
    assert {k: types.provider_name(k) for k in ("email", "sms", "voice", "llm")} == {
        "email": "local", "sms": "local", "voice": "local", "llm": "local"}
    monkeypatch.setenv("LOOPLINE_PROVIDER_DEFAULTS", "aws")
    types = task_types()
    assert {k: types.provider_name(k) for k in ("email", "sms", "voice", "llm")} == {
        "email": "ses", "sms": "sns", "voice": "webhook", "llm": "bedrock"}
    # types that need nothing outside the machine use their one provider in both
    assert types.provider_name("shell") == "subprocess"
    assert types.provider_name("http") == "urllib"
    assert types.provider_name("file") == "local"


def test_loopline_providers_overrides_the_defaults_per_type(task_env, monkeypatch):
    monkeypatch.setenv("LOOPLINE_PROVIDER_DEFAULTS", "aws")
    monkeypatch.setenv("LOOPLINE_PROVIDERS", " email = local , llm=openai ")
    types = task_types()
    assert types.provider_name("email") == "local"
    assert types.provider_name("llm") == "openai"
    assert types.provider_name("sms") == "sns"


@pytest.mark.parametrize("providers, defaults, message", [
    ("email=carrier-pigeon", None, "unknown 'email' provider 'carrier-pigeon'"),
    ("email", None, "not of the form type=provider"),
    (None, "mars", "LOOPLINE_PROVIDER_DEFAULTS"),
])
def test_bad_provider_configuration_is_a_typed_task_failure(task_env, monkeypatch, providers, defaults, message):
    if providers:
        monkeypatch.setenv("LOOPLINE_PROVIDERS", providers)
    if defaults:
        monkeypatch.setenv("LOOPLINE_PROVIDER_DEFAULTS", defaults)
    error = failure("email", {"to": ["a@example.com"], "subject": "s", "body": "b"})
    assert error.error_type == "ProviderConfigError"
    assert message in error.message


def test_a_deployment_can_register_its_own_provider(task_env, monkeypatch):
    calls = []

    class Pigeon:
        def send(self, to, body, sender, meta):
            calls.append((to, body, meta.task_id))
            return "coo-1"

    monkeypatch.setenv("LOOPLINE_PROVIDERS", "sms=pigeon")
    types = task_types().with_provider("sms", Provider("pigeon", lambda settings: Pigeon()))
    assert run_type("sms", {"to": "+15551234567", "body": "hi"}, types=types) == {
        "message_id": "coo-1", "to": "+15551234567"}
    assert calls == [("+15551234567", "hi", "t1")]
    assert types.providers.available("sms") == ["local", "pigeon", "sns"]
    assert "pigeon" not in task_types().providers.available("sms")  # the built-in types are unchanged


def test_an_unknown_task_type_fails_typed():
    error = failure("teleport", {})
    assert error.error_type == "UnsupportedTaskType"


def test_a_provider_bug_is_a_typed_failure_not_a_raw_exception(task_env, monkeypatch):
    class Broken:
        def send(self, to, body, sender, meta):
            raise ZeroDivisionError("oops")

    monkeypatch.setenv("LOOPLINE_PROVIDERS", "sms=broken")
    types = task_types().with_provider("sms", Provider("broken", lambda settings: Broken()))
    error = failure("sms", {"to": "+15551234567", "body": "hi"}, types=types)
    assert error.error_type == "TaskProviderError"
    assert "ZeroDivisionError: oops" in error.message


# ------------------------------------------------------------------ outbox


def test_outbox_records_entries_by_kind_and_is_bounded():
    box = outbox.Outbox(limit=3)
    for i in range(5):
        box.record("email" if i % 2 else "sms", f"t{i}", "r", {"i": i}, {"ok": True})
    entries = box.entries()
    assert [e["task_id"] for e in entries] == ["t2", "t3", "t4"]
    assert [e["task_id"] for e in box.entries("email")] == ["t3"]
    entry = entries[0]
    assert set(entry) == {"type", "at", "task_id", "run_id", "request", "result"}
    assert entry["at"].endswith("Z")
    entries[0]["request"]["i"] = 99  # a copy: the outbox itself is unchanged
    assert box.entries()[0]["request"]["i"] == 2
    box.clear()
    assert box.entries() == [] and len(box) == 0


def test_outbox_is_safe_across_threads():
    box = outbox.Outbox(limit=10_000)

    def write(n):
        for i in range(200):
            box.record("sms", f"{n}-{i}", "r", {}, {})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(box.entries()) == 1600
