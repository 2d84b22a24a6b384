"""statemachine.history: the pure reading of a runs-table change into history entries (no store)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from statemachine import history as h
from statemachine.events import Cause, CauseKind
from statemachine.history import EntryKind, HistoryEntry, Retention, entries_of, image, valid_cursor
from statemachine.state import LastChange


def note(reason: str, at: str = "2026-01-01T00:00:00.000Z", kind: str = "message", name: str = "exec",
         subject: str = "b attempt 1") -> LastChange:
    return LastChange(reason=reason, at=at, cause_kind=kind, cause_name=name, cause_subject=subject)


def change(old, new, seq: str = "7") -> dict:
    keys = new or old
    return {"Keys": {"pk": keys["pk"], "sk": keys["sk"]}, "SequenceNumber": seq,
            **({"OldImage": old} if old else {}), **({"NewImage": new} if new else {})}


CLAIMED = note("attempt 1 (fresh)")
DONE = note("completed", at="2026-01-01T00:00:01.000Z", kind="result", name="task result", subject="")

# (what happened, old image, new image, expected (kind, item, status, previous, attempt, reason) or None)
CASES = [
    ("a task claimed: its item did not exist", None, image("r", "b", "RUNNING", 1, CLAIMED),
     (EntryKind.TASK, "b", "RUNNING", None, 1, "attempt 1 (fresh)")),
    ("a task completed", image("r", "b", "RUNNING", 1, CLAIMED), image("r", "b", "COMPLETED", 1, DONE),
     (EntryKind.TASK, "b", "COMPLETED", "RUNNING", 1, "completed")),
    ("a dependency counted on a PENDING item: no note", None, image("r", "c", "PENDING", 0, None), None),
    ("a counter written over a noted item leaves the note as it was",
     image("r", "b", "RUNNING", 1, CLAIMED), image("r", "b", "RUNNING", 1, CLAIMED), None),
    ("a note written with the same status is a new entry (a park, a wait's timer)",
     image("r", "b", "WAITING", 1, CLAIMED), image("r", "b", "WAITING", 1, note("parked: the run is paused")),
     (EntryKind.TASK, "b", "WAITING", "WAITING", 1, "parked: the run is paused")),
    ("a run started", None, image("r", "", "RUNNING", 0, note("started w@1", kind="request", name="start")),
     (EntryKind.RUN, "", "RUNNING", None, 0, "started w@1")),
    ("a run ended", image("r", "", "RUNNING", 0, CLAIMED), image("r", "", "FAILED", 0, note("failed: Boom")),
     (EntryKind.RUN, "", "FAILED", "RUNNING", 0, "failed: Boom")),
    ("an item expired (TTL): removed, nothing to add", image("r", "", "COMPLETED", 0, DONE), None, None),
]


@pytest.mark.parametrize(("what", "old", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_change_means_these_entries(what, old, new, expected):
    entries = entries_of(change(old, new))
    if expected is None:
        assert entries == []
        return
    (entry,) = entries
    assert (entry.kind, entry.item, entry.status, entry.previous, entry.attempt, entry.reason) == expected
    assert entry.run_id == "r" and entry.seq == "7"


def test_an_entry_carries_the_cause_and_time_of_its_note():
    (entry,) = entries_of(change(image("r", "b", "RUNNING", 1, CLAIMED), image("r", "b", "COMPLETED", 1, DONE)))
    assert entry.at == "2026-01-01T00:00:01.000Z"
    assert entry.cause == Cause(CauseKind.RESULT, "task result", "")
    (started,) = entries_of(change(None, image("r", "", "RUNNING", 0, note("started", kind="", name="", subject=""))))
    assert started.cause is None  # written outside any message or request


def test_items_that_are_neither_run_nor_task_mean_nothing():
    other = {"pk": {"S": "r"}, "sk": {"S": "X#1"}, "status": {"S": "RUNNING"},
             "last_change": image("r", "", "RUNNING", 0, CLAIMED)["last_change"]}
    assert entries_of(change(None, other)) == []


def test_the_same_record_gives_the_same_entry_and_sort_key():
    record = change(None, image("r", "b", "RUNNING", 1, CLAIMED), seq="123")
    assert entries_of(record) == entries_of(record)
    assert entries_of(record)[0].sort_key == "2026-01-01T00:00:00.000Z#" + "123".zfill(40)


def test_sort_keys_order_sequence_numbers_as_numbers():
    at = "2026-01-01T00:00:00.000Z"
    nine, ten = (HistoryEntry("r", at, s, EntryKind.RUN, "", "RUNNING", None, 0, "", None) for s in ("9", "10"))
    assert nine.sort_key < ten.sort_key


def test_entries_and_actions_round_trip_through_their_json():
    (entry,) = entries_of(change(image("r", "b", "RUNNING", 1, CLAIMED), image("r", "b", "COMPLETED", 1, DONE)))
    assert h.decode_entry("r", h.encode_entry(entry)) == entry
    from statemachine.history import AuditAction, AuditEntry

    action = AuditEntry("2026-01-01T00:00:00.000Z", "req-1", AuditAction.CANCEL, "alice", "10.0.0.1", "curl",
                        "r", "wrong input", 202)
    assert h.decode_action(h.encode_action(action)) == action


@pytest.mark.parametrize(("cursor", "valid"), [
    ("2026-01-01T00:00:00.000Z#0000000000000000000000000000000000000123", True),
    ("2026-01-01T00:00:00.000Z#3f2a-req", True),
    ("", False), ("nonsense", False), ("2026-01-01#1", False), ("2026-01-01T00:00:00.000Z#a b", False),
])
def test_cursors(cursor, valid):
    assert valid_cursor(cursor) is valid


def test_retention_expires_n_days_after_the_moment():
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert Retention(30).expires(moment) == int(moment.timestamp()) + 30 * 86400
    assert Retention(0).expires(moment) is None  # kept for ever
