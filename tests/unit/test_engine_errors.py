"""error_handling (catch, finally), compensation (saga), workflow timeout: dsl.md "Retries, errors, compensation"."""

from __future__ import annotations

import pytest

from tests.unit.test_engine_semantics import drive, start, statuses

CATCH = """
workflow:
  metadata: {id: catching}
  tasks:
    - {id: fetch, type: python, config: {code: "raise ConnectionError('api down')"}}
    - {id: use, type: python, depends_on: [fetch], config: {code: "result = tasks['fetch']['output']"}}
    - id: fallback
      type: python
      config: {code: "result = {'cached': True, 'why': error['type'] + ': ' + error['message']}"}
  error_handling:
    catch:
      - {error_types: [ConnectionError, TimeoutError], handler: fallback}
"""


def test_a_caught_failure_runs_the_handler_and_dependents_get_its_output(local, clock):
    view = drive(local, start(local, CATCH), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["fetch"]["status"] == "FAILED"  # it stays FAILED
    assert view["tasks"]["fetch"]["error"]["type"] == "ConnectionError"
    handled = {"cached": True, "why": "ConnectionError: api down"}
    assert view["tasks"]["fallback"] == {"status": "COMPLETED", "output": handled, "attempts": 1, "error": None}
    assert view["tasks"]["use"]["output"] == handled


def test_an_error_type_no_clause_names_is_not_caught(local, clock):
    text = CATCH.replace("raise ConnectionError('api down')", "raise KeyError('x')")
    view = drive(local, start(local, text), clock)
    assert view["status"] == "FAILED"
    assert statuses(view) == {"fetch": "FAILED", "use": "CANCELLED", "fallback": "SKIPPED"}


def test_a_failing_handler_leaves_the_failure_uncaught(local, clock):
    text = CATCH.replace("result = {'cached': True, 'why': error['type'] + ': ' + error['message']}",
                         "raise RuntimeError('handler broke')")
    view = drive(local, start(local, text), clock)
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "ConnectionError"
    assert statuses(view) == {"fetch": "FAILED", "use": "CANCELLED", "fallback": "FAILED"}


def test_catch_with_retry_runs_the_task_again_after_the_handler(local, clock):
    view = drive(local, start(local, """
        workflow:
          metadata: {id: catch_retry}
          variables: [{name: fixed, default: false}]
          tasks:
            - id: flaky
              type: python
              config:
                code: |
                  if not fixed:
                      raise ConnectionError('not yet')
                  result = 'worked'
            - id: repair
              type: python
              config: {code: "result = 'repaired'"}
              outputs: [{name: fixed, value: "${true}", export: true}]
          error_handling:
            catch: [{handler: repair, retry: true}]
        """), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["flaky"] == {"status": "COMPLETED", "output": "worked", "attempts": 2, "error": None}


def test_finally_tasks_run_last_whatever_happened(local, clock):
    text = """
        workflow:
          metadata: {id: finals}
          tasks:
            - {id: work, type: python, config: {code: "%s"}}
            - {id: more, type: python, depends_on: [work], config: {code: "result = 2"}}
            - {id: cleanup, type: python, config: {code: "result = tasks['more']['status']"}, depends_on: [more]}
            - {id: report, type: python, config: {code: "result = 'reported'"}}
          error_handling:
            finally: [cleanup, report]
        """
    ok = drive(local, start(local, text % "result = 1"), clock)
    assert ok["status"] == "COMPLETED"
    assert ok["tasks"]["cleanup"]["output"] == "COMPLETED" and ok["tasks"]["report"]["output"] == "reported"
    bad = drive(local, start(local, text % "raise ValueError('no')"), clock)
    assert bad["status"] == "FAILED"
    assert bad["tasks"]["cleanup"]["output"] == "CANCELLED" and bad["tasks"]["report"]["status"] == "COMPLETED"
    assert bad["tasks"]["cleanup"]["attempts"] == 1


def test_a_failing_finally_task_fails_the_run(local, clock):
    view = drive(local, start(local, """
        workflow:
          metadata: {id: bad_finally}
          tasks:
            - {id: work, type: python, config: {code: "result = 1"}}
            - {id: cleanup, type: python, config: {code: "raise OSError('disk')"}}
          error_handling:
            finally: [cleanup]
        """), clock)
    assert view["status"] == "FAILED" and view["error"]["type"] == "OSError"


SAGA = """
workflow:
  metadata: {id: trip}
  tasks:
    - id: flight
      type: python
      config: {code: "result = 'FL-1'"}
      compensation: {task_id: cancel_flight}
    - id: hotel
      type: python
      depends_on: [flight]
      config: {code: "result = 'HT-2'"}
      compensation: {task_id: cancel_hotel}
    - id: car
      type: python
      depends_on: [hotel]
      config: {code: "raise RuntimeError('no cars left')"}
      compensation: {task_id: cancel_car}
    - id: cancel_flight
      type: python
      depends_on: [flight]
      config: {code: "result = 'refunded ' + tasks['flight']['output']"}
    - id: cancel_hotel
      type: python
      depends_on: [hotel]
      config: {code: "result = 'refunded ' + tasks['hotel']['output']"}
    - {id: cancel_car, type: python, config: {code: "result = 'never'"}}
    - {id: log, type: python, config: {code: "result = 'logged'"}}
  error_handling:
    finally: [log]
"""


def test_compensation_runs_in_reverse_order_of_completion_then_finally(local, clock, actions):
    view = drive(local, start(local, SAGA), clock)
    assert view["status"] == "FAILED" and view["error"]["type"] == "RuntimeError"
    assert view["tasks"]["cancel_hotel"]["output"] == "refunded HT-2"
    assert view["tasks"]["cancel_flight"]["output"] == "refunded FL-1"
    assert view["tasks"]["cancel_car"]["status"] == "SKIPPED"  # car never completed
    assert actions == ["flight", "hotel", "car", "cancel_hotel", "cancel_flight", "log"]


def test_no_compensation_when_the_run_succeeds(local, clock):
    view = drive(local, start(local, SAGA.replace("raise RuntimeError('no cars left')", "result = 'CR-3'")), clock)
    assert view["status"] == "COMPLETED"
    assert [view["tasks"][t]["status"] for t in ("cancel_flight", "cancel_hotel", "cancel_car")] == ["SKIPPED"] * 3
    assert view["tasks"]["log"]["status"] == "COMPLETED"


def test_workflow_timeout_cancels_what_is_left_and_compensates(local, clock):
    view = drive(local, start(local, """
        workflow:
          metadata: {id: slow}
          config: {timeout: 1h}
          tasks:
            - id: book
              type: python
              config: {code: "result = 'booked'"}
              compensation: {task_id: unbook}
            - {id: wait_long, type: wait, depends_on: [book], config: {duration: 2d}}
            - {id: after, type: python, depends_on: [wait_long], config: {code: "result = 1"}}
            - {id: unbook, type: python, config: {code: "result = 'unbooked'"}}
        """), clock)
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "WorkflowTimeout"
    assert statuses(view) == {"book": "COMPLETED", "wait_long": "CANCELLED", "after": "CANCELLED",
                              "unbook": "COMPLETED"}


def test_workflow_timeout_does_not_touch_a_run_that_finished(local, clock):
    view = drive(local, start(local, """
        workflow:
          metadata: {id: quick}
          config: {timeout: 1h}
          tasks:
            - {id: a, type: python, config: {code: "result = 1"}}
        """), clock)
    assert view["status"] == "COMPLETED"
    clock.advance(7200)
    while local.pump_once():
        pass
    assert local.engine.describe_run(view["run_id"])["status"] == "COMPLETED"


@pytest.mark.parametrize("text, message", [
    ("""
workflow:
  metadata: {id: r}
  tasks:
    - {id: a, type: python, depends_on: [h], config: {code: "x=1"}}
    - {id: h, type: python, config: {code: "x=1"}}
  error_handling:
    catch: [{handler: h}]
""", "depends on 'h', which only runs as a catch handler"),
    ("""
workflow:
  metadata: {id: r}
  tasks:
    - {id: a, type: python, config: {code: "x=1"}, compensation: {task_id: h}}
    - {id: h, type: python, config: {code: "x=1"}}
  error_handling:
    finally: [h]
""", "task 'h' already runs as a compensation task; a task has one role"),
])
def test_role_misuse_is_a_validation_error(text, message):
    from statemachine.compiler import validate_workflow

    assert any(message in str(d) for d in validate_workflow(text, "r.yaml"))
