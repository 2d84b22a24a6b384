"""loopline/sqlite/items.py: a record's JSON in the state file."""

from __future__ import annotations

import json

from infra.ports import RunRecord, TaskRecord
from loopline.sqlite.items import decode_run, decode_task, encode


def test_a_field_that_is_none_by_default_is_left_out_and_decodes_back() -> None:
    task = TaskRecord("a", status="COMPLETED", attempt=1, output={"n": 1}, resolved=frozenset({"x"}))
    text = encode(task)
    stored = json.loads(text)
    assert "lease_until" not in stored and "approval" not in stored  # None, their default
    assert stored["deps_ok"] == 0 and stored["resolved"] == ["x"]  # not None by default: kept
    assert decode_task(text) == task
    run = RunRecord("r", "h", "wf", outputs=None, ended_at=None)
    assert "ended_at" not in json.loads(encode(run)) and decode_run(encode(run)) == run


def test_a_record_written_whole_by_an_earlier_release_reads_the_same() -> None:
    task = TaskRecord("a", status="RUNNING", attempt=2, lease_until="2030-01-01T00:00:00.000Z")
    whole = json.dumps({name: (sorted(value) if isinstance(value, frozenset) else value)
                        for name, value in vars(task).items()})
    assert '"approval": null' in whole
    assert decode_task(whole) == task
