"""Statuses are enums whose values are the strings stored and shown (statemachine/status.py)."""

from __future__ import annotations

import json

from statemachine.plan import TASK_STATUSES, TERMINAL
from statemachine.status import RUN_ENDED, TASK_ALIVE, TASK_ENDED, RunStatus, TaskStatus


def test_a_status_is_its_stored_string():
    assert TaskStatus.RUNNING == "RUNNING" and "RUNNING" == TaskStatus.RUNNING
    assert json.dumps({"status": TaskStatus.SKIPPED}) == '{"status": "SKIPPED"}'
    assert f"{RunStatus.PAUSED}" == "PAUSED"
    assert "FAILED" in RUN_ENDED and "COMPLETED" in TASK_ENDED


def test_the_enums_cover_every_status_the_plan_and_stores_know():
    assert set(TaskStatus) == set(TASK_STATUSES)
    assert TASK_ENDED == TERMINAL
    assert set(TASK_ALIVE) - {None} == set(TaskStatus) - TASK_ENDED
    assert RUN_ENDED == {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
