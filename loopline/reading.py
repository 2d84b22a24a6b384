"""What the CLI reads and parses from the user: files bounded while they are read, options checked.

A workflow file or an ``--input @file`` may be anything a path names: ``/dev/zero``,
a FIFO that never ends, a directory, a file of gigabytes. Each is read in chunks and
refused as soon as it passes its documented limit, so memory and time stay bounded
by the limit; devices, directories and sockets are refused before any read. Pipes
(``--input @<(cmd)``) are read like files.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import stat

_CHUNK = 64 * 1024


class Unreadable(Exception):
    """A file the CLI will not read, with the reason as the user should see it."""


def read_bounded(path: str, limit: int, unit: str, what: str, located: bool = False) -> str:
    """The UTF-8 text of ``path`` (universal newlines), refused past ``limit`` characters or bytes (``unit``).

    ``located``: a problem with the content is reported as ``FILE:1:1: message`` (a workflow file).
    """
    try:
        # O_NONBLOCK: opening a FIFO nobody writes to must not hang (a regular file ignores it).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        raise Unreadable(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise Unreadable(f"{path}: cannot read: it is a directory")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise Unreadable(f"{path}: cannot read: not a regular file or a pipe (a device or a socket)")
        os.set_blocking(fd, True)  # a pipe's writer may be slower than us; with no writer a read is EOF
        return _decode(fd, f"{path}:1:1" if located else path, limit, unit, what)
    finally:
        os.close(fd)


def _decode(fd: int, where: str, limit: int, unit: str, what: str) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts, size = [], 0
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            raise Unreadable(f"{where}: the file is not UTF-8 text") from error
        except OSError as error:
            raise Unreadable(f"{where}: cannot read: {error.strerror or error}") from error
        size += len(chunk) if unit == "bytes" else len(text)
        if size > limit:
            raise Unreadable(f"{where}: {what} is larger than {limit:,} {unit}; refused")
        parts.append(text)
        if not chunk:
            return "".join(parts).replace("\r\n", "\n").replace("\r", "\n")


# ------------------------------------------------------------ option types (argparse)


def positive_seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds above 0 (not -1, 0, nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def port(lowest: int):
    """A TCP port from ``lowest`` (0: any free port) to 65535."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not lowest <= value <= 65535:
            raise argparse.ArgumentTypeError(f"must be a port number from {lowest} to 65535, not {text!r}")
        return value

    return check
