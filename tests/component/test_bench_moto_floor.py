"""bench/moto_floor.py: its writes are the conditional writes it says, and it prints the floor of each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import moto_floor  # noqa: E402


def test_each_chain_writes_one_item_per_step(runs_table) -> None:
    table = runs_table
    moto_floor.puts(table, "runs")
    moto_floor.updates(table, "runs")
    items = table.scan(TableName="runs")["Items"]
    assert len(items) == 2 * moto_floor.STEPS
    assert {i["status"]["S"] for i in items if "field0" in i and i["field0"]["S"].startswith("x")} == {"COMPLETED"}
    updated = [i for i in items if i["field0"]["S"].startswith("y")]
    assert len(updated) == moto_floor.STEPS and not any("status" in i for i in updated)


def test_a_first_write_is_refused_where_the_item_is(runs_table) -> None:
    table = runs_table
    item = moto_floor._task_item("run-1", 0)
    table.put_item(TableName="runs", Item=item, ConditionExpression="attribute_not_exists(sk)")
    with pytest.raises(table.exceptions.ConditionalCheckFailedException):
        table.put_item(TableName="runs", Item=item, ConditionExpression="attribute_not_exists(sk)")


def test_it_prints_the_floor_of_both_kinds_on_the_embedded_default(capsys) -> None:
    assert moto_floor.main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "10 conditional PutItems" in out and "10 conditional UpdateItems" in out
