"""loopline/kept_clock.py: a movable clock kept in local mode's state directory."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from infra.clock import parse_iso
from loopline.kept_clock import FILE, ClockFileError, kept_clock


def test_the_first_start_keeps_its_time_and_each_move_is_kept(tmp_path):
    clock = kept_clock(tmp_path)
    start = clock.now()
    assert parse_iso(json.loads((tmp_path / FILE).read_text())["now"]) == start
    clock.advance(3600)
    assert parse_iso(json.loads((tmp_path / FILE).read_text())["now"]) == start + timedelta(hours=1)


def test_a_restart_goes_on_from_the_moved_time_not_the_wall_clock(tmp_path):
    first = kept_clock(tmp_path)
    moved = first.advance(days=3)
    again = kept_clock(tmp_path)
    assert again.now() == moved
    assert again.advance(1) == moved + timedelta(seconds=1)
    assert not list(tmp_path.glob("*.partial"))  # replaced whole


def test_an_unreadable_clock_file_is_refused_with_its_path(tmp_path):
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(ClockFileError, match=f"{FILE}: not a kept clock"):
        kept_clock(tmp_path)
    (tmp_path / FILE).write_text('{"now": 3}')
    with pytest.raises(ClockFileError):
        kept_clock(tmp_path)


def test_the_cli_refuses_to_serve_on_an_unreadable_clock_with_exit_2(tmp_path, capsys):
    from loopline.cli import main

    (tmp_path / FILE).write_text("garbage")
    assert main(["dev", "--local", "--movable-clock", "--state", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "not a kept clock" in err and "Traceback" not in err
