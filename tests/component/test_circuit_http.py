"""A circuit breaker on an http task (run in the worker, not the task runner), in local mode against a
server on 127.0.0.1: the server's 503s open the breaker, and while it is open no request reaches the
server; after open_for one trial request goes through and its 200 closes the breaker."""

from __future__ import annotations

import pytest

from infra.tasks.registry import TaskTypes
from infra.tasks.settings import TaskSettings
from loopline.memory.local_mode import LocalMode
from tests.conftest import compile_yaml
from tests.unit.test_engine_semantics import drive
from tests.unit.test_task_settings import server, task_env  # noqa: F401

ORDERS = """
workflow:
  metadata: {id: orders}
  tasks:
    - id: fetch
      type: http
      config: {url: "URL/orders"}
      circuit_breaker: {name: orders_api, failures: 3, window: 1m, open_for: 10s}
"""


@pytest.fixture
def local(clock, task_env):  # noqa: F811
    mode = LocalMode(clock=clock, task_types=TaskTypes(TaskSettings(egress_allow="127.0.0.1")))
    yield mode
    mode.close()


def fetch(local, clock, server) -> dict:  # noqa: F811
    view = drive(local, local.engine.start_run(compile_yaml(ORDERS.replace("URL", server.url)), {}), clock)
    return view["tasks"]["fetch"]


def test_while_open_no_request_reaches_the_failing_server(local, clock, server):  # noqa: F811
    server.json("GET", "/orders", {"error": "overloaded"}, status=503)
    for _ in range(3):
        assert fetch(local, clock, server)["error"]["type"] == "HttpError"
    assert len(server.requests) == 3
    for _ in range(4):
        assert fetch(local, clock, server)["error"]["type"] == "CircuitOpen"
    assert len(server.requests) == 3  # refused without a request

    server.json("GET", "/orders", {"orders": []})
    clock.advance(10)
    assert fetch(local, clock, server)["status"] == "COMPLETED"  # the trial
    assert fetch(local, clock, server)["status"] == "COMPLETED"  # closed
    assert len(server.requests) == 5
