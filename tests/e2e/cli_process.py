"""A `loopline` command of this checkout as a user starts it, its stderr read as it comes (the links are there)."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPLINE = str(Path(sys.executable).with_name("loopline"))


class Running:
    """A `loopline` process whose stderr lines are read as they come (the links are printed there)."""

    def __init__(self, args: list[str]):
        """``args``: what follows `loopline` on the command line."""
        # The console script with this checkout's code first on the path (the venv may be another's).
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([LOOPLINE, *args], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        # Both pipes read as they fill, each by its own thread (communicate() would race the stderr reader).
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stdout, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout.append(self.process.stdout.read())

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def link(self, kind: str, timeout: float = 60) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind} link within {timeout} s:\n" + "".join(self.stderr)) from None
            found = re.search(rf"{kind} waiting: task '[^']+': (\S+)", line)
            if found:
                return found.group(1)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Its exit code and all it printed on stdout, once it has ended."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code, "".join(self.stdout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def call(url: str, body: dict | None = None) -> tuple[int, str]:
    """A POST of ``body`` as JSON, or a GET without one; the status and the text answered."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
