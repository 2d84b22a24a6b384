"""One headless Chromium process driven over the Chrome DevTools Protocol on a pipe: no driver, no extra package.

The browser reads commands on fd 3 and answers on fd 4 (``--remote-debugging-pipe``);
messages are JSON separated by NUL bytes. Every wait is bounded by the task's deadline.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from ..base import TaskFailure
from .request import BROWSER_ERROR, UNAVAILABLE

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--window-size=1280,800",
)


def chromium_path(configured: str | None = None) -> str | None:
    """The Chromium binary: ``configured`` (LOOPLINE_CHROMIUM) if given, else where Debian puts it."""
    for candidate in [configured] if configured else ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


_WIRE = ("import os, sys\n"
         "r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
         "os.dup2(r, 3); os.dup2(w, 4)\n"
         "os.set_inheritable(3, True); os.set_inheritable(4, True)\n"
         "os.execv(sys.argv[3], sys.argv[3:])\n")


class Chrome:
    """One headless Chromium process, spoken to over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, deadline: float, flags: tuple[str, ...] = ()):
        self.deadline = deadline
        self.profile = tempfile.mkdtemp(prefix="loopline-chromium-")
        to_chrome_r, self._out = os.pipe()
        self._in, from_chrome_w = os.pipe()
        argv = [binary, *CHROMIUM_FLAGS, *flags, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "about:blank"]
        try:
            # Chromium reads commands on fd 3 and answers on fd 4. A tiny exec wrapper puts the pipes
            # there (no preexec_fn, which is unsafe in a threaded process).
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WIRE, str(to_chrome_r), str(from_chrome_w), *argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(to_chrome_r, from_chrome_w), start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise TaskFailure(UNAVAILABLE, f"cannot start {binary}: {exc}") from exc
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.session: str | None = None
        self.events: list[str] = []

    def __enter__(self) -> "Chrome":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.process.poll() is None:
                self._send("Browser.close", {}, None)
                self.process.wait(timeout=5)
        except Exception:
            pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        for fd in (self._in, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._out, data):]
        except OSError as exc:
            raise TaskFailure(BROWSER_ERROR, f"chromium exited ({exc})") from exc
        return self._next

    def _receive(self, until: float, what: str) -> dict[str, Any] | None:
        """The next message, or None once ``until`` (monotonic) has passed; events are kept in ``events``."""
        while b"\0" not in self._buffer:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise TaskFailure("TaskTimeout", f"the browser did not finish {what} in time")
                return None
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise TaskFailure(BROWSER_ERROR, f"chromium exited during {what}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message and "id" not in message:
            self.events.append(message["method"])
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, page: bool = True) -> dict[str, Any]:
        ident = self._send(method, params or {}, self.session if page else None)
        while True:
            message = self._receive(self.deadline, method)
            if message is not None and message.get("id") == ident:
                if "error" in message:
                    raise TaskFailure(BROWSER_ERROR, f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def wait_event(self, names: set[str], seconds: float | None = None) -> bool:
        """Whether one of the events ``names`` arrived (or had arrived) within ``seconds`` (None: the deadline)."""
        until = self.deadline if seconds is None else time.monotonic() + seconds
        while not names.intersection(self.events):
            if self._receive(until, "loading the page") is None:
                return False
        return True

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 page=False)["sessionId"]

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text", "")
            raise ScriptError(text.splitlines()[0] if text else "script error")
        return reply.get("result", {}).get("value")

    def wait_until(self, expression: str, what: str, error_type: str) -> None:
        while True:
            try:
                if self.evaluate(expression):
                    return
            except TaskFailure as failure:
                # The deadline came while the page was being asked (a busy machine): what ran out is
                # the wait for ``expression``, so that is the failure, not a timeout of the browser.
                if failure.error_type != "TaskTimeout":
                    raise
                raise TaskFailure(error_type, what) from failure
            if time.monotonic() > self.deadline - 0.05:
                raise TaskFailure(error_type, what)
            time.sleep(0.05)


class ScriptError(Exception):
    """A script the page ran threw (a bad selector, say): the task's config, not the browser, is wrong."""
