"""The Python builder's ``circuit_breaker`` task option (docs/python-builder.md): written as the language
writes it, and compiled to the same breaker."""

from __future__ import annotations

from loopline import Workflow
from statemachine.plan import BreakerSpec


def test_a_task_option_circuit_breaker_is_written_as_the_language_writes_it():
    wf = Workflow("orders").http("fetch", "https://orders.example.com/api", circuit_breaker={
        "name": "orders_api", "failures": 3, "window": "1m", "open_for": "10s"})
    [task] = wf.to_dict()["workflow"]["tasks"]
    assert task["circuit_breaker"] == {"name": "orders_api", "failures": 3, "window": "1m", "open_for": "10s"}
    assert wf.compile().nodes["fetch"].circuit_breaker == BreakerSpec(name="orders_api", failures=3, window=60,
                                                                       open_for=10, scope="orders")
    assert Workflow.from_yaml(wf.to_yaml()) == wf
