"""The ``file`` task type's provider: read, write, copy, move, delete, list and exists inside one configured root.

The root is ``LOOPLINE_FILE_ROOT`` (default: ``loopline-files`` under the
system temp dir), read into :class:`infra.tasks.settings.TaskSettings`. Every
path in a workflow is relative to it; an absolute path, a ``..`` that climbs
out, or a symlink that points out is refused with ``FileAccessDenied``. Other
task types that take a file (email attachments, browser screenshots, the shell's
working directory) use the same root. The task type itself is types/file.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from . import common
from .base import TaskFailure
from .common import INVALID_CONFIG
from .settings import default_file_root

ACCESS_DENIED = "FileAccessDenied"
MAX_READ_BYTES = 5 * 1024 * 1024
ACTIONS = ("read", "write", "copy", "move", "delete", "list", "exists")


default_root = default_file_root  # where the root is when LOOPLINE_FILE_ROOT is not set


def root(configured: str | None) -> Path:
    """The file root, made if missing: ``configured`` (LOOPLINE_FILE_ROOT) or the default, symlinks resolved."""
    base = Path(configured or default_root()).expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskFailure("FileError", f"cannot create the file root {str(base)!r}: {exc}") from exc
    return Path(os.path.realpath(base))


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def resolve(path: Any, key: str, base: Path) -> Path:
    """``path`` (relative to the root) as an absolute path inside it, or ``FileAccessDenied``.

    The returned path keeps its last component as written (so deleting a symlink
    deletes the link), and both it and what it points to are checked."""
    if path is None or path == "":
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' is required")
    if not isinstance(path, str):
        raise TaskFailure(INVALID_CONFIG, f"'config.{key}' must be a string")
    if "\0" in path:
        raise TaskFailure(ACCESS_DENIED, f"{key} {path!r} contains a NUL character")
    if os.path.isabs(path) or path.startswith("\\"):
        raise TaskFailure(ACCESS_DENIED, f"{key} {path!r} is absolute; paths are relative to the file root")
    base_text = str(base)
    lexical = os.path.normpath(os.path.join(base_text, path))
    if not _inside(lexical, base_text):
        raise TaskFailure(ACCESS_DENIED, f"{key} {path!r} is outside the file root")
    if lexical == base_text:
        return Path(base_text)
    parent, name = os.path.split(lexical)
    real_parent = os.path.realpath(parent)
    if not _inside(real_parent, base_text):
        raise TaskFailure(ACCESS_DENIED, f"{key} {path!r} is outside the file root (through a symlink)")
    candidate = os.path.join(real_parent, name)
    if not _inside(os.path.realpath(candidate), base_text):
        raise TaskFailure(ACCESS_DENIED, f"{key} {path!r} is a symlink that points outside the file root")
    return Path(candidate)


def relative(path: Path, base: Path) -> str:
    rel = os.path.relpath(path, base)
    return "." if rel == "." else Path(rel).as_posix()


class FileStore(Protocol):
    def run(self, action: str, config: dict[str, Any]) -> dict[str, Any]: ...


class RootedFiles:
    """The real file provider: the local file system under :func:`root`."""

    def __init__(self, base: Path):
        self.base = base

    def path(self, config: dict[str, Any], key: str = "path") -> Path:
        return resolve(config.get(key), key, self.base)

    def rel(self, path: Path) -> str:
        return relative(path, self.base)

    def run(self, action: str, config: dict[str, Any]) -> dict[str, Any]:
        try:
            return getattr(self, f"_{action}")(config)
        except TaskFailure:
            raise
        except FileNotFoundError as exc:
            raise TaskFailure("FileNotFound", f"{action}: no such file: {self._name(exc)}") from exc
        except (IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError, OSError) as exc:
            raise TaskFailure("FileError", f"{action}: {exc.strerror or exc}: {self._name(exc)}") from exc

    def _name(self, exc: OSError) -> str:
        name = exc.filename
        if name and _inside(os.path.abspath(name), str(self.base)):
            return self.rel(Path(name))
        return str(name or "")

    # ------------------------------------------------------------ actions

    def _read(self, config: dict[str, Any]) -> dict[str, Any]:
        path = self.path(config)
        encoding = (common.text(config, "encoding") or "utf-8").lower()
        if path.is_dir():
            raise TaskFailure("FileError", f"read: {self.rel(path)} is a directory")
        size = path.stat().st_size
        if size > MAX_READ_BYTES:
            raise TaskFailure("FileTooLarge", f"read: {self.rel(path)} has {size} bytes (limit {MAX_READ_BYTES})")
        data = path.read_bytes()
        if encoding == "base64":
            content = base64.b64encode(data).decode("ascii")
        else:
            try:
                content = data.decode(encoding)
            except LookupError as exc:
                raise TaskFailure(INVALID_CONFIG, f"'config.encoding': unknown encoding {encoding!r}") from exc
            except UnicodeDecodeError as exc:
                raise TaskFailure("FileError", f"read: {self.rel(path)} is not {encoding} text "
                                               "(use encoding: base64)") from exc
        return {"path": self.rel(path), "content": content, "bytes": len(data)}

    def _write(self, config: dict[str, Any]) -> dict[str, Any]:
        path = self.path(config)
        if path == self.base:
            raise TaskFailure(ACCESS_DENIED, "write: the path is the file root itself")
        content = config.get("content")
        encoding = (common.text(config, "encoding") or "utf-8").lower()
        if content is None:
            data = b""
        elif isinstance(content, str):
            if encoding == "base64":
                try:
                    data = base64.b64decode(content, validate=True)
                except ValueError as exc:
                    raise TaskFailure(INVALID_CONFIG, "'config.content' is not valid base64") from exc
            else:
                try:
                    data = content.encode(encoding)
                except LookupError as exc:
                    raise TaskFailure(INVALID_CONFIG, f"'config.encoding': unknown encoding {encoding!r}") from exc
        else:
            data = json.dumps(content, ensure_ascii=False).encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "ab" if common.flag(config, "append", False) else "wb"
        with open(path, mode) as handle:
            handle.write(data)
        return {"path": self.rel(path), "bytes": len(data)}

    def _copy(self, config: dict[str, Any]) -> dict[str, Any]:
        source, target = self.path(config), self._destination(config)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file() and not f.is_symlink())
        else:
            shutil.copyfile(source, target, follow_symlinks=True)
            size = target.stat().st_size
        return {"path": self.rel(source), "destination": self.rel(target), "bytes": size}

    def _move(self, config: dict[str, Any]) -> dict[str, Any]:
        source, target = self.path(config), self._destination(config)
        if source == self.base:
            raise TaskFailure(ACCESS_DENIED, "move: the path is the file root itself")
        if not os.path.lexists(source):
            raise FileNotFoundError(2, "No such file or directory", str(source))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)  # the destination is the new path, not a folder to move into
        return {"path": self.rel(source), "destination": self.rel(target)}

    def _delete(self, config: dict[str, Any]) -> dict[str, Any]:
        path = self.path(config)
        if path == self.base:
            raise TaskFailure(ACCESS_DENIED, "delete: the path is the file root itself")
        if not os.path.lexists(path):
            return {"path": self.rel(path), "deleted": False}
        if path.is_dir() and not path.is_symlink():
            if common.flag(config, "recursive", False):
                shutil.rmtree(path)
            else:
                path.rmdir()  # an OSError for a non-empty directory: set recursive: true
        else:
            path.unlink()
        return {"path": self.rel(path), "deleted": True}

    def _list(self, config: dict[str, Any]) -> dict[str, Any]:
        path = self.path({"path": config.get("path") or "."})
        entries = []
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            kind = "link" if child.is_symlink() else "directory" if child.is_dir() else "file"
            entries.append({"name": child.name, "type": kind,
                            "bytes": child.lstat().st_size if kind == "file" else None})
        return {"path": self.rel(path), "entries": entries}

    def _exists(self, config: dict[str, Any]) -> dict[str, Any]:
        path = self.path(config)
        exists = os.path.lexists(path)
        kind = None
        if exists:
            kind = "link" if path.is_symlink() else "directory" if path.is_dir() else "file"
        return {"path": self.rel(path), "exists": exists, "type": kind}

    def _destination(self, config: dict[str, Any]) -> Path:
        key = "destination" if config.get("destination") is not None else "to"
        target = resolve(config.get(key) if config.get(key) is not None else None, "destination", self.base)
        if target == self.base:
            raise TaskFailure(ACCESS_DENIED, "destination is the file root itself")
        return target
