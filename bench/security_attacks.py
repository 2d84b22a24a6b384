"""The attacks bench/security_probe.py replays, one function each, grouped by issue #9 item.

Each takes the running target and returns (held, what was seen). An attack holds
when the defense did its job: the request was refused, or the code ran without
reaching what it went for. Workflows here are what a hostile author would submit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOOPLINE = str(Path(sys.executable).with_name("loopline"))


@dataclass(frozen=True)
class Attack:
    item: int
    name: str
    run: Callable


ATTACKS: list[Attack] = []


def attack(item: int, name: str):
    def register(function):
        ATTACKS.append(Attack(item, name, function))
        return function
    return register


def refused(reply, *statuses) -> bool:
    return reply.status in statuses if statuses else 400 <= reply.status < 500


def shell_marker_workflow(marker: Path) -> str:
    return f"""
workflow:
  metadata: {{id: driveby}}
  tasks:
    - id: touch
      type: shell
      config: {{command: ["touch", "{marker}"]}}
"""


def python_workflow(code: str, timeout: str = "30s", workflow_id: str = "probe") -> str:
    return yaml.safe_dump({"workflow": {"metadata": {"id": workflow_id}, "tasks": [
        {"id": "t", "type": "python", "timeout": timeout, "config": {"code": code}}]}}, sort_keys=False)


def one_task(task: dict, workflow_id: str = "probe") -> str:
    return yaml.safe_dump({"workflow": {"metadata": {"id": workflow_id}, "tasks": [{"id": "t", **task}]}},
                          sort_keys=False)


def not_leaked(view: dict, secret: str, what: str = "canary") -> tuple[bool, str]:
    leaked = bool(secret) and secret in json.dumps(view, default=str)
    return bool(secret) and not leaked, f"{view['status']}; {what} {'LEAKED' if leaked else 'not seen'}"


def output_of(view: dict) -> str:
    task = view.get("tasks", {}).get("t", {})
    return json.dumps([task.get("output"), task.get("error"), task.get("printed")])


# ---------------------------------------------------------------- 1. the browser's reach


def _no_run_from(t, marker: Path, reply) -> tuple[bool, str]:
    time.sleep(1.5)  # a run that was accepted would have touched the marker by now
    return refused(reply) and not marker.exists(), f"{reply.status}; marker {'made' if marker.exists() else 'absent'}"


@attack(1, "POST /runs as text/plain (a cross-site form or no-cors fetch)")
def text_plain_run(t):
    marker = t.drop / "text-plain"
    raw = json.dumps({"workflow": shell_marker_workflow(marker)}).encode()
    return _no_run_from(t, marker, t.request("POST", "/runs", raw=raw, content_type="text/plain"))


@attack(1, "POST /runs as a urlencoded form")
def form_run(t):
    marker = t.drop / "form"
    raw = json.dumps({"workflow": shell_marker_workflow(marker)}).encode()
    return _no_run_from(t, marker, t.request("POST", "/runs", raw=raw,
                                             content_type="application/x-www-form-urlencoded"))


@attack(1, "POST /runs as JSON from a foreign Origin")
def foreign_origin_run(t):
    marker = t.drop / "origin"
    reply = t.request("POST", "/runs", {"workflow": shell_marker_workflow(marker)},
                      headers={"Origin": "http://127.0.0.1:1"})
    return _no_run_from(t, marker, reply)


@attack(1, "POST /runs from Origin: null (a sandboxed frame)")
def null_origin_run(t):
    marker = t.drop / "null-origin"
    reply = t.request("POST", "/runs", {"workflow": shell_marker_workflow(marker)}, headers={"Origin": "null"})
    return _no_run_from(t, marker, reply)


@attack(1, "DNS rebinding: GET /approvals with a foreign Host")
def rebind_approvals(t):
    reply = t.request("GET", "/approvals", headers={"Host": f"rebind.example:{t.port}"})
    return refused(reply, 403), repr(reply)


@attack(1, "DNS rebinding: POST /runs with a foreign Host")
def rebind_run(t):
    marker = t.drop / "rebind"
    reply = t.request("POST", "/runs", {"workflow": shell_marker_workflow(marker)},
                      headers={"Host": f"rebind.example:{t.port}"})
    return _no_run_from(t, marker, reply)


@attack(1, "POST /_dev/clock as text/plain")
def clock_text_plain(t):
    reply = t.request("POST", "/_dev/clock", raw=b'{"seconds": 1}', content_type="text/plain")
    return refused(reply, 403, 415), repr(reply)


# ---------------------------------------------------------------- 2. custom modules


@attack(2, "custom task importing subprocess:getoutput")
def custom_subprocess(t):
    view = t.run(one_task({"type": "custom", "config": {"handler": "subprocess:getoutput",
                                                          "parameters": {"cmd": "id"}}}))
    return view["status"] == "REFUSED" and refused(view["reply"], 400), repr(view.get("reply", view["status"]))


@attack(2, "custom task importing the link-key loader")
def custom_key_loader(t):
    view = t.run(one_task({"type": "custom", "config": {"handler": "loopline.embedded.keyfile:local_link_key"}}))
    leaked = t.link_key() and t.link_key() in json.dumps(view, default=str)
    return view["status"] == "REFUSED" and not leaked, repr(view.get("reply", view["status"]))


@attack(2, "custom handler chosen by an expression")
def custom_expression(t):
    view = t.run(one_task({"type": "custom", "config": {"handler": "${inputs.h}"}}), {"h": "os:getcwd"})
    return view["status"] == "REFUSED", repr(view.get("reply", view["status"]))


@attack(2, "POST /workflows registering a custom os:system task")
def custom_register(t):
    reply = t.request("POST", "/workflows", {"workflow": one_task(
        {"type": "custom", "config": {"handler": "os:system", "parameters": {"command": "id"}}}, "evilreg")})
    return refused(reply, 400), repr(reply)


@attack(2, "loopline validate of a custom os:system task")
def custom_validate(t):
    path = t.drop / "custom.yaml"
    path.write_text(one_task({"type": "custom", "config": {"handler": "os:system"}}))
    env = {k: v for k, v in os.environ.items() if k != "LOOPLINE_CUSTOM_MODULES"}
    done = subprocess.run([LOOPLINE, "validate", str(path)], capture_output=True, text=True, timeout=60, env=env)
    positioned = re.search(rf"{re.escape(str(path))}:\d+:\d+: ", done.stdout + done.stderr)
    return done.returncode == 2 and bool(positioned), f"exit {done.returncode}: {(done.stdout + done.stderr)[:150]!r}"


# ---------------------------------------------------------------- 3. reaching the engine's secrets


@attack(3, "python task reads the canary from os.environ")
def env_canary(t):
    view = t.run(python_workflow("import os\nresult = dict(os.environ)"))
    return not_leaked(view, t.canary)


@attack(3, "python task scans /proc/*/environ for the canary")
def proc_environ(t):
    code = ("import os\nfound = []\nfor pid in os.listdir('/proc'):\n"
            "    try:\n        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
            "    except Exception:\n        pass\nresult = ' '.join(found)")
    view = t.run(python_workflow(code))
    return not_leaked(view, t.canary)


@attack(3, "shell task greps /proc/*/environ")
def shell_environ(t):
    view = t.run(one_task({"type": "shell", "config": {
        "command": ["sh", "-c", "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep LOOPLINE_PROBE || true"]}}))
    return not_leaked(view, t.canary)


@attack(3, "python task reads .loopline/link.key")
def read_key(t):
    path = t.workdir / ".loopline" / "link.key"
    view = t.run(python_workflow(f"result = open({str(path)!r}).read()"))
    return not_leaked(view, t.link_key(), "link key")


@attack(3, "python task runs as root")
def runs_as_root(t):
    view = t.run(python_workflow("import os\nresult = os.getuid()"))
    uid = view.get("tasks", {}).get("t", {}).get("output")
    return view["status"] == "COMPLETED" and uid not in (0, None), f"{view['status']}; uid {uid}"


def _daemon_code(beat: Path, then: str) -> str:
    return (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        f"            open({str(beat)!r}, 'w').write(str(os.getpid()))\n"
        "            time.sleep(0.1)\n"
        "    os._exit(0)\n"
        f"{then}\n")


def _daemon_gone(beat: Path) -> tuple[bool, str]:
    time.sleep(1.0)
    if not beat.exists():
        return False, "the daemon never started (the attack proved nothing)"
    before = beat.stat().st_mtime
    time.sleep(1.5)
    alive = beat.stat().st_mtime != before
    if alive:  # clean up what the defense should have
        try:
            os.kill(int(beat.read_text() or 0), 9)
        except (ValueError, OSError):
            pass
    return not alive, "a setsid grandchild " + ("SURVIVED" if alive else "was killed")


@attack(3, "setsid grandchild outlives its task's timeout")
def daemon_after_timeout(t):
    beat = t.drop / "beat-timeout"
    view = t.run(python_workflow(_daemon_code(beat, "time.sleep(30)"), timeout="2s"))
    ok, seen = _daemon_gone(beat)
    return ok and view["status"] == "FAILED", f"{view['status']}; {seen}"


@attack(3, "setsid grandchild outlives a task that returned")
def daemon_after_return(t):
    beat = t.drop / "beat-return"
    view = t.run(python_workflow(_daemon_code(beat, "time.sleep(0.5)\nresult = 1")))
    ok, seen = _daemon_gone(beat)
    return ok, f"{view['status']}; {seen}"


@attack(3, "python task allocates 4 GB")
def memory_bomb(t):
    view = t.run(python_workflow("x = bytearray(4 * 1024 ** 3)\nresult = len(x)"))
    return view["status"] == "FAILED" and t.alive(), f"{view['status']} {output_of(view)[:100]}"


@attack(3, "python task writes a 200 MB file")
def file_bomb(t):
    path = t.drop / "big.bin"
    code = f"f = open({str(path)!r}, 'wb')\nfor _ in range(200):\n    f.write(b'x' * 2 ** 20)\nf.close()\nresult = 1"
    view = t.run(python_workflow(code))
    size = path.stat().st_size if path.exists() else 0
    path.unlink(missing_ok=True)
    return view["status"] == "FAILED" and size < 200 * 1024 * 1024, f"{view['status']}; wrote {size >> 20} MB"


# ---------------------------------------------------------------- 4. refused links


APPROVAL = """
workflow:
  metadata: {id: probe_approval}
  tasks:
    - id: ask
      type: approval
      config: {approvers: [a@example.com, b@example.com], required_approvals: 2, timeout: 1h}
"""


def _waiting_approval(t) -> tuple[str, list[dict]]:
    run_id = t.start_run(APPROVAL).json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = t.request("GET", f"/runs/{run_id}").json()
        if len(view.get("approvals", [])) == 2:
            return run_id, view["approvals"]
        time.sleep(0.1)
    raise RuntimeError("the approval never waited")


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@attack(4, "3,000 uses of a used link grow the run")
def refusal_amplification(t):
    run_id, links = _waiting_approval(t)
    used = _path(links[0]["url"])
    t.request("POST", used, {"decision": "APPROVED"})
    t.request("POST", used, {"decision": "APPROVED"})  # one refusal
    size_one = len(t.request("GET", f"/runs/{run_id}").body)
    for i in range(1500):
        t.request("GET", used)
        t.request("POST", used, {"decision": "REJECTED"})
    size_many = len(t.request("GET", f"/runs/{run_id}").body)
    return size_many <= size_one + 2048, f"run view {size_one} B after one refusal, {size_many} B after 3,000"


# ---------------------------------------------------------------- 5. shell arguments


@attack(5, "an input with spaces becomes several shell arguments")
def shell_split(t):
    view = t.run(one_task({"type": "shell", "config": {"command": "printf [%s] ${inputs.x}"}}), {"x": "a b --flag"})
    stdout = (view.get("tasks", {}).get("t", {}).get("output") or {}).get("stdout")
    return stdout == "[a b --flag]", f"{view['status']}; stdout {stdout!r}"


# ---------------------------------------------------------------- 6. internal addresses


class _Witness(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Witness.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def _internal_url_attack(spelling: str):
    def run(t):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Witness)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        _Witness.hits.clear()
        try:
            url = spelling.format(port=port)
            view = t.run(one_task({"type": "http", "config": {"url": url, "timeout": "3s"}}))
        finally:
            server.shutdown()
        return view["status"] in ("FAILED", "REFUSED") and not _Witness.hits, \
            f"{view['status']}; the internal server saw {len(_Witness.hits)} request(s)"
    return run


for _spelling in ("http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://0x7f000001:{port}/",
                  "http://2130706433:{port}/", "http://0177.0.0.1:{port}/", "http://127.1:{port}/",
                  "http://[::ffff:127.0.0.1]:{port}/", "http://0.0.0.0:{port}/"):
    attack(6, f"http task to {_spelling.format(port='PORT')}")(_internal_url_attack(_spelling))


@attack(6, "http task to instance metadata 169.254.169.254")
def metadata(t):
    view = t.run(one_task({"type": "http", "config": {"url": "http://169.254.169.254/latest/meta-data/",
                                                       "timeout": "2s"}}))
    error = (view.get("tasks", {}).get("t", {}).get("error") or {}).get("type")
    # Refused before connecting, not a connection that merely failed on this machine.
    return view["status"] == "REFUSED" or error not in (None, "HttpConnectionError", "TaskTimeout"), \
        f"{view['status']}; {error}"


# ---------------------------------------------------------------- 7. plans over 400 KB


@attack(7, "a 900-task chain")
def long_chain(t):
    tasks = [{"id": f"s{i}", "type": "wait", "config": {"duration": "0s"}} for i in range(900)]
    for i in range(1, 900):
        tasks[i]["depends_on"] = [f"s{i - 1}"]
    view = t.run(yaml.safe_dump({"workflow": {"metadata": {"id": "chain900"}, "tasks": tasks}}), timeout=900)
    return view["status"] == "COMPLETED", f"{view['status']} {view.get('reply', '')!r}"[:150]


@attack(7, "a workflow with a 420 KB description")
def big_description(t):
    workflow = yaml.safe_dump({"workflow": {"metadata": {"id": "bigdesc", "description": "d" * 420_000},
                                            "tasks": [{"id": "t", "type": "wait", "config": {"duration": "0s"}}]}})
    view = t.run(workflow)
    return view["status"] == "COMPLETED", f"{view['status']} {view.get('reply', '')!r}"[:150]


# ---------------------------------------------------------------- 8. tasks longer than the worker


@attack(8, "a python task with a 20-minute timeout")
def python_too_long(t):
    view = t.run(python_workflow("result = 1", timeout="20m"))
    return view["status"] == "REFUSED", repr(view.get("reply", view["status"]))[:150]


@attack(8, "an http task with a 5-minute timeout")
def http_too_long(t):
    view = t.run(one_task({"type": "http", "timeout": "5m", "config": {"url": "https://example.com/"}}))
    return view["status"] == "REFUSED", repr(view.get("reply", view["status"]))[:150]


@attack(8, "a python task running 35 s (longer than the worker's 30 s)")
def python_35s(t):
    view = t.run(python_workflow("import time\ntime.sleep(35)\nresult = 'done'", timeout="60s"), timeout=120)
    return view["status"] == "COMPLETED", f"{view['status']} {output_of(view)[:100]}"


# ---------------------------------------------------------------- 9. one request at a time


@attack(9, "GET while a python task sleeps 6 s")
def answers_while_busy(t):
    run_id = t.start_run(python_workflow("import time\ntime.sleep(6)\nresult = 1")).json()["run_id"]
    t.wait(run_id, 30, until=("RUNNING",), task="t")
    started = time.monotonic()
    t.request("GET", f"/runs/{run_id}")
    took = time.monotonic() - started
    t.wait(run_id, 60)
    return took < 1.0, f"GET answered in {took:.2f} s"


# ---------------------------------------------------------------- 10. print()


@attack(10, "print() in a python task")
def prints(t):
    view = t.run(python_workflow("print('hello from the task')\nresult = 2"))
    printed = json.dumps(view.get("tasks", {}).get("t", {}))
    return view["status"] == "COMPLETED" and "hello from the task" in printed, f"{view['status']} {printed[:120]}"


# ---------------------------------------------------------------- 11. deep JSON


def _deep(fields: dict, depth: int = 5000) -> bytes:
    """A body that is right in every field but one, nested deeper than a recursive parser goes."""
    return (json.dumps(fields)[:-1] + ', "nested": ' + "[" * depth + "]" * depth + "}").encode()


def _deep_attack(path_of: Callable, fields: Callable):
    def run(t):
        path = path_of(t)
        reply = t.request("POST", path, raw=_deep(fields(t)))
        return reply.status == 400, f"{path.split('/')[1]}: {reply!r}"[:150]
    return run


_DEEP_RUN = {"workflow": one_task({"type": "wait", "config": {"duration": "0s"}}, "deep")}
attack(11, "deeply nested JSON to POST /runs")(_deep_attack(lambda t: "/runs", lambda t: _DEEP_RUN))
attack(11, "deeply nested JSON to POST /workflows")(_deep_attack(lambda t: "/workflows", lambda t: _DEEP_RUN))
attack(11, "deeply nested JSON to an approval link")(_deep_attack(
    lambda t: _path(_waiting_approval(t)[1][0]["url"]), lambda t: {"decision": "APPROVED"}))


@attack(11, "deeply nested JSON to a callback link")
def deep_callback(t):
    run_id = t.start_run(one_task({"type": "callback", "config": {"timeout": "1h"}})).json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        callbacks = t.request("GET", f"/runs/{run_id}").json().get("callbacks")
        if callbacks:
            reply = t.request("POST", _path(callbacks[0]["url"]), raw=_deep({"ok": True}))
            view = t.request("GET", f"/runs/{run_id}").json()
            return reply.status == 400 and view["tasks"]["t"]["status"] == "WAITING", repr(reply)[:150]
        time.sleep(0.1)
    return False, "the callback never waited"


# ---------------------------------------------------------------- 12. NaN and Infinity


@attack(12, "NaN in a request body")
def nan_body(t):
    body = json.dumps({"workflow": one_task({"type": "wait", "config": {"duration": "0s"}}, "nan")})
    reply = t.request("POST", "/runs", raw=(body[:-1] + ', "input": {"n": NaN}}').encode())
    return reply.status == 400, repr(reply)


@attack(12, "an output of json_parse('1e999') through GET /runs")
def infinity_out(t):
    workflow = yaml.safe_dump({"workflow": {"metadata": {"id": "inf"}, "tasks": [
        {"id": "t", "type": "wait", "config": {"duration": "0s"}}],
        "outputs": {"mappings": {"big": "${json_parse('1e999')}"}}}})
    reply = t.start_run(workflow)
    if reply.status != 201:
        return refused(reply), repr(reply)
    run_id = reply.json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        raw = t.request("GET", f"/runs/{run_id}")
        try:
            status = raw.json()["status"]
        except ValueError as exc:
            return False, f"GET /runs emitted {exc}"
        if status in ("COMPLETED", "FAILED"):
            return True, status
        time.sleep(0.1)
    return False, "the run never ended"


@attack(12, "loopline run --input with Infinity")
def infinity_input(t):
    path = t.drop / "hello.yaml"
    path.write_text(python_workflow("result = 1"))
    done = subprocess.run([LOOPLINE, "run", str(path), "--local", "--input", '{"n": Infinity}'], capture_output=True,
                          text=True, timeout=60)
    return done.returncode == 2, f"exit {done.returncode}"


# ---------------------------------------------------------------- 13. SQL touching files


def _sql_attack(query: str, made: str):
    def run(t):
        path = t.drop / made
        view = t.run(one_task({"type": "database", "config": {"connection": "probe",
                                                               "query": query.format(path=path)}}))
        exists = path.exists()
        path.unlink(missing_ok=True)
        seen = f"{view['status']}; {made} {'written' if exists else 'absent'}"
        return view["status"] == "FAILED" and not exists, seen
    return run


attack(13, "database ATTACH of a file")(_sql_attack("ATTACH DATABASE '{path}' AS x", "attached.db"))
attack(13, "database VACUUM INTO a file")(_sql_attack("VACUUM INTO '{path}'", "vacuumed.db"))


# ---------------------------------------------------------------- 14. many clients


@attack(14, "200 POST /runs from 50 threads")
def burst(t):
    workflow = one_task({"type": "wait", "config": {"duration": "0s"}}, "burst")
    errors: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for _ in range(n):
            try:
                status = t.request("POST", "/runs", {"workflow": workflow}, timeout=120).status
                with lock:
                    statuses.append(status)
            except OSError as exc:
                with lock:
                    errors.append(type(exc).__name__)

    threads = [threading.Thread(target=client, args=(4,)) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = sum(1 for s in statuses if s in (201, 503))
    return not errors and answered == 200, f"{statuses.count(201)} created, {statuses.count(503)} busy, " \
                                             f"{len(errors)} connection errors {sorted(set(errors))}"


@attack(14, "a stalled client holds the server")
def stalled(t):
    import socket

    sockets = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", t.port))
        sock.sendall(b"POST /runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        sockets.append(sock)
    try:
        started = time.monotonic()
        reply = t.request("GET", "/runs/none", timeout=10)
        return reply.status == 404, f"another client answered in {time.monotonic() - started:.2f} s"
    finally:
        for sock in sockets:
            sock.close()


# ---------------------------------------------------------------- 15. the CLI's inputs


def _cli(*args: str, timeout: float = 60) -> tuple[int, float]:
    started = time.monotonic()
    try:
        done = subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=timeout)
        return done.returncode, time.monotonic() - started
    except subprocess.TimeoutExpired:
        return -1, timeout


@attack(15, "loopline run /dev/zero")
def run_dev_zero(t):
    code, took = _cli("run", "/dev/zero", "--local", timeout=30)
    return code == 2, f"exit {code} after {took:.1f} s"


@attack(15, "loopline run --input @/dev/zero")
def input_dev_zero(t):
    path = t.drop / "small.yaml"
    path.write_text(python_workflow("result = 1"))
    code, took = _cli("run", str(path), "--local", "--input", "@/dev/zero", timeout=30)
    return code == 2, f"exit {code} after {took:.1f} s"


for _value in ("-1", "nan", "inf", "0"):
    def _timeout_attack(t, value=_value):
        path = t.drop / "small.yaml"
        path.write_text(python_workflow("result = 1"))
        code, _ = _cli("run", str(path), "--local", "--timeout", value)
        return code == 2, f"exit {code}"
    attack(15, f"loopline run --timeout {_value}")(_timeout_attack)


# ---------------------------------------------------------------- 16. who can decide


@attack(16, "an approval link's JSON shows another approver's comment")
def other_comments(t):
    run_id, links = _waiting_approval(t)
    t.request("POST", _path(links[0]["url"]), {"decision": "APPROVED", "comments": "SECRET-REMARK"})
    reply = t.request("GET", _path(links[1]["url"]))
    return reply.status == 200 and "SECRET-REMARK" not in reply.text, repr(reply)[:150]


@attack(16, "a JSON answer without X-Content-Type-Options: nosniff")
def nosniff(t):
    missing = [path for path in ("/runs/none", "/approvals", "/workflows")
               if t.request("GET", path).headers.get("x-content-type-options") != "nosniff"]
    return not missing, f"missing on {missing}" if missing else "present"


@attack(16, "the links of a run have their own route")
def links_route(t):
    run_id, _ = _waiting_approval(t)
    reply = t.request("GET", f"/runs/{run_id}/links")
    return reply.status == 200 and "/approvals/" in reply.text, repr(reply)[:150]


# ---------------------------------------------------------------- 17. template.yaml


def _template() -> dict:
    from loopline.embedded.intrinsics import translate

    return translate(ROOT / "template.yaml")


def _statements(resources: dict) -> list[dict]:
    out = []
    for resource in resources.values():
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in resource.get("Properties", {}).get("Policies", []):
                out.extend(policy["PolicyDocument"]["Statement"])
    return out


@attack(17, "template: sns:Publish or Bedrock on every resource")
def template_wildcards(t):
    resources = _template()["Resources"]
    loose = []
    for statement in _statements(resources):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        targets = json.dumps(statement.get("Resource"))
        if any(a in ("sns:Publish", "bedrock:InvokeModel") for a in actions) and "Condition" not in statement \
                and ('"*"' in targets or "foundation-model/*" in targets):
            loose.append(actions)
    return not loose, f"unscoped: {loose}" if loose else "scoped"


@attack(17, "template: API stage without throttling or access logs")
def template_stage(t):
    stages = [r for r in _template()["Resources"].values() if r.get("Type") == "AWS::ApiGateway::Stage"]
    props = stages[0].get("Properties", {}) if stages else {}
    throttled = any("ThrottlingRateLimit" in (s or {}) for s in props.get("MethodSettings", []))
    logged = "AccessLogSetting" in props
    return throttled and logged, f"throttling {throttled}, access logs {logged}"


@attack(17, "template: payload bucket reachable without TLS")
def template_tls(t):
    resources = _template()["Resources"]
    policies = [r for r in resources.values() if r.get("Type") == "AWS::S3::BucketPolicy"]
    text = json.dumps(policies)
    return "aws:SecureTransport" in text, "a TLS-only bucket policy" if "aws:SecureTransport" in text else "none"
