"""Replays hostile inputs against `loopline dev` on 127.0.0.1, `loopline run` and template.yaml.

    .venv/bin/python bench/security_probe.py [--only TEXT] [--list]

Starts a real `loopline dev` (default settings: nothing allowed that a deployment
must opt into) in a fresh working directory, with a canary variable in its
environment and its link key in `.loopline/link.key` there, then tries each attack
of bench/security_attacks.py the way a hostile user would: over HTTP, through the
CLI, or by reading template.yaml. Prints one line per attack (the issue #9 item
it belongs to, `held` or `NOT HELD`, what was seen), then `N attacks, N held`.
Exit status 0 when every attack held, 1 otherwise. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
LOOPLINE = str(Path(sys.executable).with_name("loopline"))
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        # Strict: a body with NaN or Infinity in it is not JSON.
        return json.loads(self.body, parse_constant=_refuse_constant)

    def __repr__(self) -> str:
        return f"{self.status} {self.text[:120]!r}"


def _refuse_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


class Target:
    """One `loopline dev` process, started in a directory of its own, and ways to talk to it."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="loopline-probe-"))
        # Where task code may leave markers the probe looks for: writable by any user.
        self.drop = Path(tempfile.mkdtemp(prefix="loopline-probe-drop-"))
        os.chmod(self.drop, 0o1777)
        self.canary = "canary-" + secrets.token_hex(12)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "dev.log"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Target:
        env = {**os.environ, "LOOPLINE_PROBE_CANARY": self.canary, "LOOPLINE_DB_PROBE": "sqlite://:memory:"}
        for name in ("LOOPLINE_CUSTOM_MODULES", "LOOPLINE_EGRESS_ALLOW", "LOOPLINE_HTTP_ALLOW_HOSTS"):
            env.pop(name, None)  # the defaults a deployment starts from
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([LOOPLINE, "dev", "--port", str(self.port)], cwd=self.workdir, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/runs/none").status == 404:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"loopline dev did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self.drop, ignore_errors=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def link_key(self) -> str:
        path = self.workdir / ".loopline" / "link.key"
        return path.read_text().strip() if path.exists() else ""

    # ------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict[str, str] | None = None, content_type: str | None = "application/json",
                timeout: float = 30) -> Reply:
        """One request with exactly the headers given (Host included), like a hostile client sends."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Host": f"127.0.0.1:{self.port}", "Accept": "application/json"}
        if content_type and data is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in sent.items():
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(data or b"")))
            connection.endheaders(data)
            reply = connection.getresponse()
            return Reply(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
        finally:
            connection.close()

    def start_run(self, workflow: str, inputs: dict | None = None) -> Reply:
        return self.request("POST", "/runs", {"workflow": workflow, "input": inputs or {}})

    def run(self, workflow: str, inputs: dict | None = None, timeout: float = 60) -> dict:
        """Start a run and wait for its end; the run view (or {"status": "REFUSED", ...} if not started)."""
        reply = self.start_run(workflow, inputs)
        if reply.status != 201:
            return {"status": "REFUSED", "reply": reply}
        return self.wait(reply.json()["run_id"], timeout)

    def wait(self, run_id: str, timeout: float = 60, until=TERMINAL, task: str | None = None) -> dict:
        """Until the run's status (or, with ``task``, that task's) is one of ``until``."""
        deadline = time.monotonic() + timeout
        view: dict = {}
        while time.monotonic() < deadline:
            view = self.request("GET", f"/runs/{run_id}").json()
            status = view.get("tasks", {}).get(task, {}).get("status") if task else view.get("status")
            if status in until:
                return view
            time.sleep(0.1 if timeout <= 60 else 1.0)  # a long run is not slowed by reading it whole
        return {**view, "status": f"TIMEOUT({view.get('status')})"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only attacks whose name contains this text")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    args = parser.parse_args()
    from security_attacks import ATTACKS

    chosen = [a for a in ATTACKS if not args.only or args.only in a.name]
    if args.list:
        for a in chosen:
            print(f"#{a.item:<3} {a.name}")
        return 0
    target = Target().start()
    held = 0
    try:
        for a in chosen:
            started = time.monotonic()
            try:
                ok, seen = a.run(target)
            except Exception as exc:  # an attack that broke the probe did not show the defense
                ok, seen = False, f"probe error: {type(exc).__name__}: {exc}"
            if not target.alive():
                ok, seen = False, seen + "; the dev server died"
                target.stop()
                target = Target().start()
            held += ok
            print(f"#{a.item:<3} {'held    ' if ok else 'NOT HELD'} {a.name}: {seen} "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
    finally:
        target.stop()
    print(f"{len(chosen)} attacks, {held} held")
    return 0 if held == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
