"""The ``shell`` task type: one program run with an argument list, never through a shell.

``config.command`` is a list of arguments, or a string split like
:func:`shlex.split` before anything is filled in (so quoting works, but ``;``,
``|``, ``$(...)`` and globs are plain characters). A value rendered from run data
is one argument however it is written, so ``; rm -rf /`` or ``a b --flag``
arrives as one literal argument (:mod:`infra.sandbox.command`). To use shell
syntax on purpose, write it in the workflow: ``["sh", "-c", "a | b"]`` and pass
data as further arguments (``"$1"`` inside the script).

The program runs outside the engine (:mod:`infra.sandbox`); this module holds
what the type promises of its result: how its output streams are kept and how a
failure reads.
"""

from __future__ import annotations

import os
import signal
from typing import IO

from . import common

MAX_OUTPUT_BYTES = 256 * 1024  # per stream; more is cut and marked


def read_stream(handle: IO[bytes], keep_tail: bool) -> str:
    """A captured stream as text: at most MAX_OUTPUT_BYTES (stdout its beginning, stderr its end)."""
    size = handle.seek(0, os.SEEK_END)
    if size <= MAX_OUTPUT_BYTES:
        handle.seek(0)
        data = handle.read()
        marker = ""
    elif keep_tail:
        handle.seek(size - MAX_OUTPUT_BYTES)
        data = handle.read()
        marker = f"[... {size - MAX_OUTPUT_BYTES} bytes cut]\n"
    else:
        handle.seek(0)
        data = handle.read(MAX_OUTPUT_BYTES)
        marker = None
    text = data.decode("utf-8", errors="replace")
    if marker is None:
        text = text + f"\n[... {size - MAX_OUTPUT_BYTES} bytes cut]"
    else:
        text = marker + text
    return text.rstrip("\r\n")  # as shell command substitution does: `echo hi` gives "hi"


def failure_message(code: int, stdout: str, stderr: str, file_size_limit: int) -> str:
    """``exit code N: <the end of stderr, or of stdout>``; a program killed by a signal says which, and
    running into the file-size limit says so (a shell reports that as 128 + SIGXFSZ)."""
    message = f"exit code {code}"
    if code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        message += f" (SIGXFSZ: a file reached the {file_size_limit >> 20} MiB limit)"
    elif code < 0:
        try:
            message += f" (killed by {signal.Signals(-code).name})"
        except ValueError:
            message += f" (killed by signal {-code})"
    detail = common.excerpt(stderr or stdout or "", 500, tail=True)
    return message + (f": {detail}" if detail else "")
