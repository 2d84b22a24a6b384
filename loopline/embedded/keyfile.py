"""The link key on one machine: a file, so links survive a restart of `loopline dev` against the same
emulator (on AWS the key is the stack's Secrets Manager secret)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def key_file(home: Path | None = None) -> Path:
    """``home``: the directory local mode keeps its state in (its links outlive the process with it)."""
    return Path(os.environ.get("LOOPLINE_LINK_KEY_FILE")
                or (home or Path(os.environ.get("LOOPLINE_HOME", ".loopline"))) / "link.key")


def local_link_key(home: Path | None = None) -> str:
    """The key in the key file, created (mode 0600) with 256 random bits the first time."""
    path = key_file(home)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
