"""statemachine.metrics: the pure reading of a runs-table change into metric points (no store)."""

from __future__ import annotations

import pytest

from statemachine.history import image
from statemachine.metrics import MetricName, MetricPoint, MetricUnit, labelled, points_of, task_item_of
from statemachine.state import LastChange

T0, T1, T5 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.500Z", "2026-01-01T00:00:05.000Z"


def note(reason: str, at: str = T0, kind: str = "message") -> LastChange:
    return LastChange(reason=reason, at=at, cause_kind=kind, cause_name="exec", cause_subject="")


def change(old, new) -> dict:
    keys = new or old
    return {"Keys": {"pk": keys["pk"], "sk": keys["sk"]}, "SequenceNumber": "7",
            **({"OldImage": old} if old else {}), **({"NewImage": new} if new else {})}


def run(status: str, ended: str | None = None, why: str = "x") -> dict:
    return image("r", "", status, 0, note(why), {"workflow_id": "wf", "created_at": T0, "ended_at": ended})


def task(status: str, attempt: int = 1, why: str = "x", at: str = T0, kind: str = "message",
         waiting_for: str | None = None, ended: str | None = None) -> dict:
    return image("r", "b", status, attempt, note(why, at, kind),
                 {"started_at": T0, "ended_at": ended, "waiting_for": waiting_for})


def count(name: MetricName, status: str, workflow: str = "") -> MetricPoint:
    return MetricPoint(name, MetricUnit.COUNT, 1, status, workflow)


def seconds(name: MetricName, value: float, status: str, workflow: str = "") -> MetricPoint:
    return MetricPoint(name, MetricUnit.SECONDS, value, status, workflow)


CASES = [
    ("a run started", None, run("RUNNING"), [count(MetricName.RUNS_STARTED, "RUNNING", "wf")]),
    ("a run completed", run("RUNNING"), run("COMPLETED", T1, "done"),
     [count(MetricName.RUNS_COMPLETED, "COMPLETED", "wf"), seconds(MetricName.RUN_DURATION, 1.5, "COMPLETED", "wf")]),
    ("a run failed", run("COMPENSATING"), run("FAILED", T5, "failed"),
     [count(MetricName.RUNS_FAILED, "FAILED", "wf"), seconds(MetricName.RUN_DURATION, 5.0, "FAILED", "wf")]),
    ("a run cancelled", run("RUNNING"), run("CANCELLED", T1, "cancelled"),
     [count(MetricName.RUNS_CANCELLED, "CANCELLED", "wf"), seconds(MetricName.RUN_DURATION, 1.5, "CANCELLED", "wf")]),
    ("a redriven run back to RUNNING is not started again", run("FAILED", T1), run("RUNNING", None, "redriven"), []),
    ("an ended run noted again counts nothing", run("FAILED", T1), run("FAILED", T1, "again"), []),
    ("a first attempt is no retry", None, task("RUNNING"), []),
    ("a second attempt starting is a retry", task("RETRYING", 1), task("RUNNING", 2, "attempt 2"),
     [count(MetricName.TASK_RETRIES, "RUNNING")]),
    ("a task completed", task("RUNNING"), task("COMPLETED", why="done", ended=T1),
     [seconds(MetricName.TASK_DURATION, 1.5, "COMPLETED")]),
    ("a task entering an approval's wait", task("RUNNING"), task("WAITING", waiting_for="approval"),
     [count(MetricName.APPROVALS_WAITING, "WAITING")]),
    ("a vote on a waiting approval counts nothing", task("WAITING", waiting_for="approval"),
     task("WAITING", why="vote", waiting_for="approval"), []),
    ("a timer's wait is no approval", task("RUNNING"), task("WAITING", waiting_for="timer"), []),
    ("an approval decided", task("WAITING", waiting_for="approval"), task("COMPLETED", why="approved", at=T5, ended=T5),
     [seconds(MetricName.APPROVAL_DECISION_TIME, 5.0, "COMPLETED"),
      seconds(MetricName.TASK_DURATION, 5.0, "COMPLETED")]),
    ("a task failed by the dead-letter path", task("RUNNING"),
     task("FAILED", why="poison", kind="dead_letter", ended=T1),
     [seconds(MetricName.TASK_DURATION, 1.5, "FAILED"), count(MetricName.DEAD_LETTERS, "FAILED")]),
    ("a task failed otherwise is no dead letter", task("RUNNING"), task("FAILED", why="boom", kind="result", ended=T1),
     [seconds(MetricName.TASK_DURATION, 1.5, "FAILED")]),
    ("an item expired (TTL)", run("COMPLETED", T1), None, []),
    ("a write with no note (a dependency counter)", None, image("r", "c", "PENDING", 0, None), []),
]


@pytest.mark.parametrize(("what", "old", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_change_means_these_points(what, old, new, expected):
    # A completed task's checkpoint size has tests of its own (below).
    assert [p for p in points_of(change(old, new)) if p.name != MetricName.CHECKPOINT_SIZE] == expected


def test_a_completed_task_tells_the_size_of_its_item_its_checkpoint():
    def completed(output: str) -> dict:
        return image("r", "b", "COMPLETED", 1, note("done"), {"started_at": T0, "ended_at": T1, "output": output})

    def size(new: dict) -> float:
        [point] = [p for p in points_of(change(task("RUNNING"), new)) if p.name == MetricName.CHECKPOINT_SIZE]
        assert (point.unit, point.status) == (MetricUnit.BYTES, "COMPLETED")
        return point.value

    small, large = size(completed("x")), size(completed("x" * 1001))
    assert 100 < small < 1000  # the item's keys, status, times and note besides its output
    assert large - small == 1000  # each byte more of output is a byte more of checkpoint
    for ended in ("FAILED", "SKIPPED", "CANCELLED"):  # only a completed task is a checkpoint
        assert not [p for p in points_of(change(task("RUNNING"), task(ended, ended=T1)))
                    if p.name == MetricName.CHECKPOINT_SIZE]
    assert not [p for p in points_of(change(completed("x"), completed("x")))  # written again: no new checkpoint
                if p.name == MetricName.CHECKPOINT_SIZE]


def test_an_item_a_migration_wrote_again_counts_nothing_and_only_its_mark_says_so():
    def written(status: str, reason: str, migrated: str | None) -> dict:
        marked = note(reason, kind="message")
        if migrated:
            marked["migrated"] = migrated
        return image("r", "b", status, 1, marked, {"started_at": T0, "ended_at": T1})

    # A completed task kept by a migration (written again, its status unchanged but for the image's old side),
    # and a waiting approval kept: nothing started or ended there.
    assert points_of(change(None, written("COMPLETED", "migrated to wf@2.0.0", "wf@2.0.0"))) == []
    assert points_of(change(task("PENDING"), written("COMPLETED", "migrated to wf@2.0.0", "wf@2.0.0"))) == []
    # The reason's text alone is no mark: a task's own end whose reason reads the same still counts.
    assert points_of(change(task("RUNNING"), written("COMPLETED", "migrated to wf@2.0.0", None)))


def test_an_unreadable_time_gives_no_duration_rather_than_a_wrong_one():
    new = image("r", "", "FAILED", 0, note("failed"), {"workflow_id": "wf", "created_at": "garbage", "ended_at": T1})
    assert points_of(change(run("RUNNING"), new)) == [count(MetricName.RUNS_FAILED, "FAILED", "wf")]


def test_dimensions_leave_out_what_the_item_does_not_carry():
    assert count(MetricName.RUNS_STARTED, "RUNNING", "wf").dimensions == {"workflow": "wf", "status": "RUNNING"}
    assert count(MetricName.TASK_RETRIES, "RUNNING").dimensions == {"status": "RUNNING"}


def test_a_change_to_a_task_item_names_its_run_and_key():
    assert task_item_of(change(task("RUNNING"), task("COMPLETED", ended=T1))) == ("r", "b")
    assert task_item_of(change(None, image("r2", "square@each.3", "RUNNING", 1, note("x")))) == ("r2", "square@each.3")
    assert task_item_of(change(None, run("RUNNING"))) is None  # the run's own item
    assert task_item_of({"Keys": {"pk": {"S": "r"}, "sk": {"S": "OTHER"}}}) is None


def test_labelled_points_carry_the_workflow_and_task_type_and_nothing_else_changes():
    points = points_of(change(task("RUNNING"), task("FAILED", why="poison", kind="dead_letter", ended=T1)))
    got = labelled(points, "orders", "python")
    assert got == [MetricPoint(MetricName.TASK_DURATION, MetricUnit.SECONDS, 1.5, "FAILED", "orders", "python"),
                   MetricPoint(MetricName.DEAD_LETTERS, MetricUnit.COUNT, 1, "FAILED", "orders", "python")]
    assert got[1].dimensions == {"workflow": "orders", "task_type": "python", "status": "FAILED"}
    assert points[0].workflow == ""  # new points: the given ones are left as they were


def test_labelling_with_what_was_not_found_keeps_what_a_point_has():
    started = count(MetricName.RUNS_STARTED, "RUNNING", "wf")
    assert labelled([started], "", "") == [started]
    retry = count(MetricName.TASK_RETRIES, "RUNNING")
    assert labelled([retry], "wf", "") == [count(MetricName.TASK_RETRIES, "RUNNING", "wf")]
