"""The file task type: actions inside the configured root; every escape refused with FileAccessDenied."""

from __future__ import annotations

import base64
import os
import tempfile

import pytest

from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401


def test_write_read_copy_move_list_delete(task_env):  # noqa: F811
    assert run_type("file", {"action": "write", "path": "a/b/note.txt", "content": "héllo"}) == {
        "path": "a/b/note.txt", "bytes": 6}
    assert (task_env / "a/b/note.txt").read_text() == "héllo"
    assert run_type("file", {"action": "read", "path": "a/b/note.txt"}) == {
        "path": "a/b/note.txt", "content": "héllo", "bytes": 6}
    run_type("file", {"action": "write", "path": "a/b/note.txt", "content": " again", "append": True})
    assert (task_env / "a/b/note.txt").read_text() == "héllo again"
    assert run_type("file", {"action": "copy", "path": "a/b/note.txt", "destination": "c/copy.txt"}) == {
        "path": "a/b/note.txt", "destination": "c/copy.txt", "bytes": 12}
    assert run_type("file", {"action": "move", "path": "c/copy.txt", "destination": "moved.txt"}) == {
        "path": "c/copy.txt", "destination": "moved.txt"}
    assert not (task_env / "c/copy.txt").exists() and (task_env / "moved.txt").read_text() == "héllo again"
    listing = run_type("file", {"action": "list", "path": "."})
    assert listing["path"] == "."
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [
        ("a", "directory"), ("c", "directory"), ("moved.txt", "file")]
    assert run_type("file", {"action": "exists", "path": "moved.txt"}) == {
        "path": "moved.txt", "exists": True, "type": "file"}
    assert run_type("file", {"action": "delete", "path": "moved.txt"}) == {"path": "moved.txt", "deleted": True}
    assert run_type("file", {"action": "delete", "path": "moved.txt"}) == {"path": "moved.txt", "deleted": False}
    assert failure("file", {"action": "delete", "path": "a"}).error_type == "FileError"  # not empty
    assert run_type("file", {"action": "delete", "path": "a", "recursive": True})["deleted"] is True


def test_structured_content_is_written_as_json_and_binary_through_base64(task_env):  # noqa: F811
    run_type("file", {"action": "write", "path": "data.json", "content": {"n": 1, "items": [1, 2]}})
    assert (task_env / "data.json").read_text() == '{"n": 1, "items": [1, 2]}'
    raw = bytes(range(256))
    run_type("file", {"action": "write", "path": "blob.bin", "content": base64.b64encode(raw).decode(),
                      "encoding": "base64"})
    assert (task_env / "blob.bin").read_bytes() == raw
    assert failure("file", {"action": "read", "path": "blob.bin"}).error_type == "FileError"
    read = run_type("file", {"action": "read", "path": "blob.bin", "encoding": "base64"})
    assert base64.b64decode(read["content"]) == raw


def test_reading_a_missing_file_is_file_not_found(task_env):  # noqa: F811
    error = failure("file", {"action": "read", "path": "nope.txt"})
    assert error.error_type == "FileNotFound"
    assert "nope.txt" in error.message


@pytest.mark.parametrize("path", [
    "../outside.txt", "a/../../outside.txt", "..", "/etc/passwd", "/tmp/x", "a/\0b",
])
def test_escapes_are_refused(task_env, path):  # noqa: F811
    for action in ("read", "write", "delete"):
        error = failure("file", {"action": action, "path": path, "content": "x"})
        assert error.error_type == "FileAccessDenied", (action, path, error.message)
    assert not (task_env.parent / "outside.txt").exists()


def test_a_destination_outside_the_root_is_refused(task_env):  # noqa: F811
    (task_env / "in.txt").write_text("secret")
    for action in ("copy", "move"):
        error = failure("file", {"action": action, "path": "in.txt", "destination": "../stolen.txt"})
        assert error.error_type == "FileAccessDenied"
    assert not (task_env.parent / "stolen.txt").exists() and (task_env / "in.txt").exists()


def test_symlinks_pointing_out_are_refused(task_env, tmp_path):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", task_env / "link.txt")
    os.symlink(outside, task_env / "linkdir")
    assert failure("file", {"action": "read", "path": "link.txt"}).error_type == "FileAccessDenied"
    assert failure("file", {"action": "write", "path": "link.txt", "content": "x"}).error_type == "FileAccessDenied"
    assert failure("file", {"action": "read", "path": "linkdir/secret.txt"}).error_type == "FileAccessDenied"
    error = failure("file", {"action": "write", "path": "linkdir/new.txt", "content": "x"})
    assert error.error_type == "FileAccessDenied"
    assert failure("file", {"action": "copy", "path": "link.txt", "destination": "c.txt"}).error_type == \
        "FileAccessDenied"
    assert (outside / "secret.txt").read_text() == "secret" and not (outside / "new.txt").exists()


def test_symlinks_inside_the_root_work_and_delete_removes_the_link(task_env):  # noqa: F811
    (task_env / "real.txt").write_text("real")
    os.symlink(task_env / "real.txt", task_env / "alias.txt")
    assert run_type("file", {"action": "read", "path": "alias.txt"})["content"] == "real"
    run_type("file", {"action": "delete", "path": "alias.txt"})
    assert (task_env / "real.txt").exists() and not (task_env / "alias.txt").exists()


def test_the_root_itself_cannot_be_deleted_or_overwritten(task_env):  # noqa: F811
    assert failure("file", {"action": "delete", "path": ".", "recursive": True}).error_type == "FileAccessDenied"
    assert failure("file", {"action": "write", "path": ".", "content": "x"}).error_type == "FileAccessDenied"
    assert task_env.is_dir()


def test_the_default_root_is_loopline_files_under_the_temp_dir(task_env, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.delenv("LOOPLINE_FILE_ROOT")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_type("file", {"action": "write", "path": "x.txt", "content": "x"})
    assert result == {"path": "x.txt", "bytes": 1}
    assert (tmp_path / "loopline-files" / "x.txt").read_text() == "x"


@pytest.mark.parametrize("config", [{"action": "explode", "path": "x"}, {"path": "x"}, {"action": "read"}])
def test_bad_config_is_invalid_config(task_env, config):  # noqa: F811
    assert failure("file", config).error_type == "InvalidConfig"
