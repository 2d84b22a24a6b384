"""``random()`` and ``uuid()`` where no claim records a seed (``when``/``skip_if``, loop conditions, the
workflow's outputs): a new value per run, the same value when the same place is evaluated again."""

from __future__ import annotations

from datetime import datetime, timezone

from statemachine.expressions import EvalContext, Scope, evaluate, seed_of
from tests.unit.test_engine_semantics import drive, start, statuses

OUTPUTS = """
workflow:
  metadata: {id: ids}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
  outputs:
    mappings: {id: "${uuid()}", dice: "${random()}"}
"""

COINS = """
workflow:
  metadata: {id: coins}
  tasks:
%s
"""


def test_each_run_gets_its_own_uuid_and_random_in_outputs(local, clock):
    first = drive(local, start(local, OUTPUTS), clock)["outputs"]
    second = drive(local, start(local, OUTPUTS), clock)["outputs"]
    assert first["id"] != second["id"]
    assert first["dice"] != second["dice"]


def test_random_in_when_is_drawn_per_task_and_run(local, clock):
    """With one fixed seed every task's ``random()`` was the same draw: all ran or none did."""
    tasks = "\n".join(f'    - {{id: t{i}, type: python, when: "${{random() < 0.5}}", config: {{code: "result = 1"}}}}'
                      for i in range(24))
    view = drive(local, start(local, COINS % tasks), clock)
    assert view["status"] == "COMPLETED"
    assert set(statuses(view).values()) == {"COMPLETED", "SKIPPED"}


def test_a_place_draws_the_same_values_when_evaluated_again():
    seed = seed_of("run-1", "task", "task", "0", "when")
    assert seed == seed_of("run-1", "task", "task", "0", "when")
    assert seed != seed_of("run-2", "task", "task", "0", "when")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    again = [evaluate("${uuid()}", Scope(roots={}), EvalContext(now=now, seed=seed)) for _ in range(2)]
    assert again[0] == again[1]
