"""The custom task type: `module:function` called with the parameters as keyword arguments.

The handlers are the functions below (``tests.unit.test_task_custom:double`` and friends).
"""

from __future__ import annotations

import time

import pytest

from infra.tasks.base import TaskFailure
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

HERE = __name__


class QuotaExceeded(Exception):
    pass


def double(value, label="x"):
    return {"label": label, "value": value * 2, "pair": (1, 2)}


def take_all(**params):
    return sorted(params)


def over_quota(**params):
    raise QuotaExceeded("monthly quota used up")


def typed_failure():
    raise TaskFailure("PaymentDeclined", "card declined")


def not_json():
    return {1, 2}


def slow():
    time.sleep(2)
    return "late"


@pytest.fixture(autouse=True)
def allow_this_module(task_env, monkeypatch):  # noqa: F811
    """Deny by default: a deployment names the modules custom handlers may come from."""
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HERE)


def test_calls_the_function_with_the_parameters_as_keywords(task_env):  # noqa: F811
    result = run_type("custom", {"handler": f"{HERE}:double", "parameters": {"value": 21, "label": "answer"}})
    assert result == {"label": "answer", "value": 42, "pair": [1, 2]}  # plain JSON: the tuple is a list
    assert run_type("custom", {"handler": f"{HERE}:take_all", "parameters": {"b": 1, "a": 2}}) == ["a", "b"]
    assert run_type("custom", {"handler": f"{HERE}:take_all"}) == []


def test_the_functions_exception_class_is_the_error_type(task_env):  # noqa: F811
    error = failure("custom", {"handler": f"{HERE}:over_quota"})
    assert (error.error_type, error.message) == ("QuotaExceeded", "monthly quota used up")
    error = failure("custom", {"handler": f"{HERE}:typed_failure"})
    assert (error.error_type, error.message) == ("PaymentDeclined", "card declined")


@pytest.mark.parametrize("handler", [
    "no_such_module_xyz:run", f"{HERE}:missing", f"{HERE}:HERE", "not a handler", "os.path",
])
def test_handlers_that_cannot_be_loaded_are_custom_handler_errors(task_env, handler):  # noqa: F811
    assert failure("custom", {"handler": handler}).error_type == "CustomHandlerError"


def test_parameters_the_function_does_not_take_are_a_custom_handler_error(task_env):  # noqa: F811
    error = failure("custom", {"handler": f"{HERE}:double", "parameters": {"valu": 1}})
    assert error.error_type == "CustomHandlerError"


def test_a_non_json_return_value_is_a_custom_handler_error(task_env):  # noqa: F811
    assert failure("custom", {"handler": f"{HERE}:not_json"}).error_type == "CustomHandlerError"


def test_a_timeout_fails_the_task(task_env):  # noqa: F811
    error = failure("custom", {"handler": f"{HERE}:slow", "timeout": "200ms"})
    assert error.error_type == "TaskTimeout"


def test_custom_modules_allow_list(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.unit, mycompany.tasks")
    assert run_type("custom", {"handler": f"{HERE}:double", "parameters": {"value": 1}})["value"] == 2
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "mycompany.tasks")
    error = failure("custom", {"handler": f"{HERE}:double", "parameters": {"value": 1}})
    assert error.error_type == "CustomHandlerError"
    assert "LOOPLINE_CUSTOM_MODULES" in error.message
