"""`loopline run`'s live line (loopline/progress.py) and `loopline dev`'s run lines (loopline/run_log.py),
from a compiled plan and the records a run leaves: what each says, and how the line is drawn."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import pty
import struct
import termios
from pathlib import Path

from infra.engine.journal import transitions_log
from infra.ports import RunRecord, TaskRecord
from loopline.progress import LiveLine, describe
from loopline.run_log import run_line, watch_runs
from statemachine.compiler import load_and_compile

PLAN = load_and_compile(Path(__file__).parent / "workflows" / "progress_demo.yaml")


def _view(**statuses: str) -> dict:
    tasks = {t: {"status": statuses.get(t, "PENDING"), "output": None, "attempts": 0, "error": None}
             for t in ("first", "last", "each", "nap")}
    return {"tasks": tasks, "approvals": [], "callbacks": []}


def test_the_line_counts_done_tasks_loops_and_what_waits_for_whom():
    view = _view(first="COMPLETED", each="WAITING", nap="COMPLETED")
    records = {
        "each": TaskRecord("each", status="WAITING", waiting_for="loop", loop_state={"total": 3}),
        "each.0": TaskRecord("each.0", status="COMPLETED"),
        "each.1": TaskRecord("each.1", status="WAITING"),
        "nap@each.0": TaskRecord("nap@each.0", status="COMPLETED"),
        "nap@each.1": TaskRecord("nap@each.1", status="WAITING", waiting_for="timer"),
    }
    # nap shows COMPLETED (its last iteration) but its loop runs on: not done yet
    assert describe(PLAN, view, records) == "1/4 tasks done | loop each: 1/3 iterations | last waits for each"
    view["tasks"]["nap"]["status"] = "WAITING"
    assert describe(PLAN, view, records).endswith("last waits for each; nap waits for its timer")


def test_a_for_each_of_one_task_counts_its_task_s_ended_items_as_its_iterations():
    view = _view(first="COMPLETED", each="WAITING", nap="WAITING")
    records = {  # no iteration items (infra/engine/iterations.py): each iteration is its task's item
        "each": TaskRecord("each", status="WAITING", waiting_for="loop", loop_state={"total": 3, "folded": True}),
        "nap@each.0": TaskRecord("nap@each.0", status="COMPLETED"),
        "nap@each.1": TaskRecord("nap@each.1", status="COMPLETED"),
        "nap@each.2": TaskRecord("nap@each.2", status="WAITING", waiting_for="timer"),
    }
    assert describe(PLAN, view, records).startswith("1/4 tasks done | loop each: 2/3 iterations")


def test_links_say_whom_they_wait_for():
    view = _view(first="WAITING")
    view["approvals"] = [{"task_id": "first", "approver": "cfo@example.com", "url": "u"},
                         {"task_id": "first", "approver": "ceo@example.com", "url": "v"}]
    view["callbacks"] = [{"task_id": "last", "url": "w"}]
    # the third, "each waits for first", is counted, not shown
    assert describe(PLAN, view, {}) == ("0/4 tasks done | first waits for cfo@example.com or ceo@example.com; "
                                        "last waits for its callback; each waits for first")


def test_an_approval_says_how_many_decisions_it_needs_and_has_and_until_when():
    view = _view(first="WAITING")
    due = "2026-12-04T09:30:00+00:00"
    view["approvals"] = [{"task_id": "first", "key": "first", "approver": who, "deadline": due}
                         for who in ("b@x", "c@x")]
    records = {"first": TaskRecord("first", status="WAITING", waiting_for="approval",
                                   approval={"required_approvals": 2, "asked": ["a@x", "b@x", "c@x"]})}
    assert describe(PLAN, view, records) == ("0/4 tasks done | first waits for b@x or c@x "
                                             "(1 of 3 decided, 2 approval(s) needed) until 2026-12-04 09:30; "
                                             "each waits for first")


def test_a_body_task_is_done_with_its_loop_and_nothing_waits_at_the_end():
    view = _view(first="COMPLETED", each="COMPLETED", nap="COMPLETED", last="COMPLETED")
    assert describe(PLAN, view, {}) == "4/4 tasks done"
    assert describe(PLAN, _view(first="RUNNING"), {}) == "0/4 tasks done | running: first | each waits for first"


def test_the_live_line_is_redrawn_in_place_with_notes_above_it_and_cut_to_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    out = io.StringIO()
    live = LiveLine(out)
    live.show("1/5 tasks done")
    live.note("  first: COMPLETED")
    live.show("2/5 tasks done | a line far longer than the terminal is wide")
    live.close()
    assert out.getvalue() == ("\r\x1b[K1/5 tasks done"
                              "\r\x1b[K  first: COMPLETED\n1/5 tasks done"
                              "\r\x1b[K2/5 tasks done | a line fa..."
                              "\r\x1b[K")


RUN = RunRecord("r1", "h", "expense_report", created_at="2026-01-01T00:00:00+00:00")


def test_dev_says_when_a_run_starts_is_redriven_and_ends_and_nothing_else():
    event = {"event": "RunTransition", "run_id": "r1", "at": "2026-01-01T00:00:02.5+00:00"}
    assert run_line({**event, "status": "RUNNING", "previous": None}, RUN) == \
        "run r1 started: workflow=expense_report status=RUNNING"
    assert run_line({**event, "status": "FAILED", "previous": "RUNNING"}, RUN) == \
        "run r1 ended: workflow=expense_report status=FAILED duration=2.50s"
    assert run_line({**event, "status": "RUNNING", "previous": "FAILED"}, RUN) == \
        "run r1 redriven from FAILED: workflow=expense_report status=RUNNING"
    for status, previous in (("PAUSED", "RUNNING"), ("RUNNING", "PAUSED"), ("COMPENSATING", "RUNNING")):
        assert run_line({**event, "status": status, "previous": previous}, RUN) is None
    assert run_line({**event, "event": "TaskTransition", "status": "COMPLETED", "previous": "RUNNING"}, RUN) is None
    assert run_line({**event, "status": "CANCELLED", "previous": "RUNNING"}, None).endswith("workflow=? "
                                                                                            "status=CANCELLED "
                                                                                            "duration=?")


def test_watching_reads_the_engines_transition_records_and_stops_cleanly():
    lines: list[str] = []
    before = (transitions_log.level, transitions_log.propagate)
    stop = watch_runs(lines.append, lambda run_id: RUN)
    try:
        assert transitions_log.isEnabledFor(logging.DEBUG)
        transitions_log.debug(json.dumps({"event": "RunTransition", "run_id": "r1", "status": "RUNNING",
                                          "previous": None, "at": "2026-01-01T00:00:00+00:00"}))
        transitions_log.debug("not JSON at all")  # reported as one line, never raised into the engine
    finally:
        stop()
    assert lines[0] == "run r1 started: workflow=expense_report status=RUNNING"
    assert len(lines) == 2 and lines[1].startswith("loopline dev: could not report a run transition")
    assert (transitions_log.level, transitions_log.propagate) == before


def test_the_line_is_cut_to_its_own_terminals_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    text = "x" * 150
    buffer = io.StringIO()  # no terminal at all: 100 columns
    LiveLine(buffer).show(text)
    assert buffer.getvalue().endswith("x" * 96 + "...")
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        with os.fdopen(os.dup(slave), "w") as terminal:  # the line's stream is the 200-column terminal
            line = LiveLine(terminal)
            line.show(text)
            assert line.text == text
    finally:
        os.close(master)
        os.close(slave)
    monkeypatch.setenv("COLUMNS", "41")  # the user's word wins, as for shutil
    line = LiveLine(io.StringIO())
    line.show(text)
    assert line.text == "x" * 37 + "..."
