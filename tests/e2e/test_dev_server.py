"""`loopline dev` as a user drives it: a real server process and HTTP requests only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LOOPLINE = str(Path(sys.executable).with_name("loopline"))

WORKFLOW = """
workflow:
  metadata: {id: review, name: Review}
  inputs:
    schema:
      type: object
      properties: {doc: {type: string}}
      required: [doc]
  tasks:
    - id: ask
      type: approval
      config:
        title: "Publish ${inputs.doc}?"
        description: Please review.
        approvers: [editor@example.com]
        details: {words: 1200}
        timeout: 2h
    - id: hook
      type: callback
      depends_on: [ask]
      config: {timeout: 1h}
    - id: done
      type: python
      depends_on: [hook]
      config: {code: "result = tasks['hook']['output']['ok']"}
  outputs:
    mappings:
      decision: "${tasks.ask.output.decision}"
      comments: "${tasks.ask.output.comments}"
      done: "${tasks.done.output}"
"""


def request(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def get_json(url):
    status, _, text = request("GET", url, headers={"Accept": "application/json"})
    return status, json.loads(text)


@pytest.fixture(scope="module")
def server():
    yield from dev_server([LOOPLINE], "--movable-clock")


def dev_server(command: list[str], *args: str, cwd=None):
    """Start `loopline dev` (``command`` runs the CLI) on a free port; yield its URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([*command, "dev", "--port", str(port), *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if get_json(f"{base}/runs/nothing")[0] == 404:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError(proc.stderr.read())
    yield base
    proc.terminate()
    proc.wait(timeout=15)


def wait_for(fetch, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if predicate(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out; last: {value}")


def test_approval_and_callback_through_http(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {"doc": "Q3"}})
    assert status == 201, text
    run_id = json.loads(text)["run_id"]
    status, view = get_json(f"{server}/runs/{run_id}")  # answers at once: the run exists
    assert status == 200 and view["run_id"] == run_id

    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["approvals"])
    approval = view["approvals"][0]
    assert approval["task_id"] == "ask" and approval["approver"] == "editor@example.com"
    url = approval["url"]

    status, headers, page = request("GET", url, headers={"Accept": "text/html"})
    assert status == 200 and "text/html" in headers["Content-Type"]
    assert "Publish Q3?" in page and 'value="APPROVED"' in page
    status, info = get_json(url)
    assert status == 200 and info["title"] == "Publish Q3?" and info["details"] == {"words": 1200}
    assert get_json(f"{server}/runs/{run_id}")[1]["tasks"]["ask"]["status"] == "WAITING"  # GET never decides

    status, _, text = request("POST", url, {"decision": "MAYBE"})
    assert status == 400 and "APPROVED" in json.loads(text)["error"]
    status, _, text = request("POST", url[:-4] + "AAAA", {"decision": "APPROVED"})
    assert status in (403, 404) and "error" in json.loads(text)
    form = "decision=APPROVED&csrf=forged"
    status, _, _ = request("POST", url, raw=form.encode(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    assert get_json(f"{server}/runs/{run_id}")[1]["tasks"]["ask"]["status"] == "WAITING"

    status, _, text = request("POST", url, {"decision": "APPROVED", "comments": "ship it"})
    assert status == 200 and json.loads(text)["decision"] == "APPROVED"
    status, _, text = request("POST", url, {"decision": "REJECTED"})
    assert status == 410
    status, _, page = request("GET", url, headers={"Accept": "text/html"})
    assert status == 410 and "<h1>" in page

    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    callback = view["callbacks"][0]["url"]
    assert request("POST", callback + "x", {"ok": True})[0] == 404
    assert request("POST", callback, raw=b"{not json")[0] == 400
    assert request("POST", callback, {"ok": True})[0] == 200
    assert request("POST", callback, {"ok": False})[0] == 410

    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                    lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["status"] == "COMPLETED"
    assert view["outputs"] == {"decision": "APPROVED", "comments": "ship it", "done": True}
    assert set(view["tasks"]) == {"ask", "hook", "done"}
    assert view["approvals"] == [] and view["callbacks"] == []


def test_timeout_with_the_movable_clock(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {"doc": "late"}})
    run_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["approvals"])
    status, _, text = request("POST", f"{server}/_dev/clock", {"seconds": 7201})
    assert status == 200
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                    lambda v: v["tasks"]["ask"]["status"] == "COMPLETED")
    assert view["tasks"]["ask"]["output"]["decision"] == "TIMED_OUT"
    status, _, _ = request("POST", view["approvals"][0]["url"] if view["approvals"] else
                           f"{server}/approvals/{'A' * 43}", {"decision": "APPROVED"})
    assert status in (404, 410)


def test_bad_requests_get_json_4xx(server):
    status, body = get_json(f"{server}/runs/does-not-exist")
    assert status == 404 and "error" in body
    status, _, text = request("POST", f"{server}/runs", raw=b"not json")
    assert status == 400 and json.loads(text)["error"]
    status, _, text = request("POST", f"{server}/runs", {"workflow": "workflow:\n  tasks: [1]\n"})
    body = json.loads(text)
    assert status == 400 and body["diagnostics"] and all(d.startswith("workflow.yaml:") for d in body["diagnostics"])
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {"doc": 5}})
    assert status == 400 and "doc" in json.loads(text)["error"]
    status, _, text = request("POST", f"{server}/runs", {"workflow": "unknown_id"})
    assert status == 404
    status, _, text = request("DELETE", f"{server}/runs/x")
    assert status == 405


CHILD = """
workflow:
  metadata: {id: child_wf, version: "1.2.0"}
  inputs: {schema: {type: object, properties: {n: {type: integer}}, required: [n]}}
  tasks:
    - {id: double, type: python, config: {code: "result = inputs['n'] * 2"}}
  outputs: {mappings: {doubled: "${tasks.double.output}"}}
"""

PARENT = """
workflow:
  metadata: {id: parent_wf}
  sub_workflows:
    - {id: kid, workflow_ref: "%s", inputs: {n: 21}}
  outputs: {mappings: {answer: "${tasks.kid.output.doubled}"}}
"""


def test_registry_and_sub_workflows_over_http(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": PARENT % "never_registered"})
    assert status == 400 and "never_registered" in json.loads(text)["error"]
    status, _, text = request("POST", f"{server}/workflows", {"workflow": CHILD})
    assert status == 201 and json.loads(text)["version"] == "1.2.0"
    status, listing = get_json(f"{server}/workflows")
    assert {"workflow_id": "child_wf", "version": "1.2.0"}.items() <= listing["workflows"][0].items()
    status, shown = get_json(f"{server}/workflows/child_wf@1.2.0")
    assert status == 200 and shown["workflow_id"] == "child_wf"
    assert get_json(f"{server}/workflows/child_wf@9.9.9")[0] == 404
    status, _, text = request("POST", f"{server}/runs", {"workflow": PARENT % "child_wf@1.2.0"})
    run_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                    lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["outputs"] == {"answer": 42}
    status, _, text = request("POST", f"{server}/runs", {"workflow": "child_wf", "input": {"n": 5}})
    by_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{server}/runs/{by_id}")[1],
                    lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"))
    assert view["outputs"] == {"doubled": 10}


def test_cancel_over_http(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {"doc": "never"}})
    run_id = json.loads(text)["run_id"]
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["approvals"])
    status, _, text = request("POST", f"{server}/runs/{run_id}/cancel")
    assert status == 202 and json.loads(text)["cancelled"] is True
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "CANCELLED")
    assert view["tasks"]["ask"]["status"] == "CANCELLED" and view["approvals"] == []
    assert request("POST", f"{server}/runs/{run_id}/cancel")[0] == 409
    assert request("POST", f"{server}/runs/nope/cancel")[0] == 404


def test_operator_tools_over_http_and_the_cli(server):
    board = """
workflow:
  metadata: {id: board}
  tasks:
    - id: vote
      type: approval
      config: {title: "Fund it?", approvers: [ann@example.com, bob@example.com], required_approvals: 2}
"""
    status, _, text = request("POST", f"{server}/runs", {"workflow": board})
    run_id = json.loads(text)["run_id"]
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: len(v["approvals"]) == 2)
    status, listed = get_json(f"{server}/approvals?approver=bob@example.com")
    assert status == 200 and [(a["run_id"], a["approver"]) for a in listed["approvals"]] == [
        (run_id, "bob@example.com")]
    cli = subprocess.run([LOOPLINE, "approvals", "--run", run_id, "--url", server], capture_output=True, text=True,
                         timeout=30)
    assert cli.returncode == 0 and "ann@example.com" in cli.stdout and "bob@example.com" in cli.stdout
    # by run + task, in an approver's name
    several = request("POST", f"{server}/runs/{run_id}/approvals/vote", {"decision": "APPROVED"})
    assert several[0] == 400
    cli = subprocess.run([LOOPLINE, "approve", "--run", run_id, "--task", "vote", "--approver", "ann@example.com",
                          "--comments", "ok", "--url", server], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    # by link
    link = get_json(f"{server}/approvals?run={run_id}")[1]["approvals"][0]["url"]
    cli = subprocess.run([LOOPLINE, "approve", link, "--comments", "me too"], capture_output=True, text=True,
                         timeout=30)
    assert cli.returncode == 0, cli.stderr
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    votes = view["tasks"]["vote"]["output"]["votes"]
    assert [(v["approver"], v["comments"]) for v in votes] == [("ann@example.com", "ok"), ("bob@example.com", "me too")]
    again = subprocess.run([LOOPLINE, "reject", link, "--url", server], capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "already" in again.stdout


def test_pause_and_resume_over_http(server):
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {"doc": "held"}})
    run_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["approvals"])
    assert request("POST", f"{server}/runs/{run_id}/pause")[0] == 202
    assert request("POST", f"{server}/runs/{run_id}/pause")[0] == 409
    assert request("POST", view["approvals"][0]["url"], {"decision": "APPROVED"})[0] == 200
    time.sleep(1)
    held = get_json(f"{server}/runs/{run_id}")[1]
    assert held["status"] == "PAUSED" and held["tasks"]["hook"]["status"] == "PENDING"
    assert request("POST", f"{server}/runs/{run_id}/resume")[0] == 202
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    assert view["status"] == "RUNNING"
    assert request("POST", f"{server}/runs/nope/resume")[0] == 404


def test_redrive_with_the_cli(server):
    text = """
workflow:
  metadata: {id: redo}
  tasks:
    - {id: hook, type: callback, config: {timeout: 1h}}
    - {id: after, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']['ok']"}}
"""
    run_id = json.loads(request("POST", f"{server}/runs", {"workflow": text, "input": {}})[2])["run_id"]
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    assert request("POST", f"{server}/_dev/clock", {"seconds": 3601})[0] == 200
    wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "FAILED")
    cli = subprocess.run([LOOPLINE, "redrive", run_id, "--url", server], capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"run_id": run_id, "status": "FAILED", "changed": True, "redrive": 1}
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["callbacks"])
    assert view["status"] == "RUNNING" and view["redrives"] == 1
    assert request("POST", view["callbacks"][0]["url"], {"ok": True})[0] == 200
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["status"] == "COMPLETED")
    assert view["tasks"]["after"]["output"] is True
    again = subprocess.run([LOOPLINE, "redrive", run_id, "--url", server], capture_output=True, text=True,
                           timeout=30)
    assert again.returncode == 2 and "only a FAILED run can be redriven" in again.stderr


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_console_sign_in_routes_lead_straight_to_the_console(server):
    """No Cognito locally: the dev server serves everyone as the local user, so signing in or out is a
    redirect to the console, with no cookie and nothing asked of a user pool."""
    opener = urllib.request.build_opener(_NoRedirect)
    for path in ("/console/login", "/console/auth?code=x&state=y", "/console/logout"):
        try:
            opener.open(f"{server}{path}", timeout=30)
            raise AssertionError(f"{path} answered without redirecting")
        except urllib.error.HTTPError as reply:
            assert reply.code == 302 and reply.headers["Location"] == "/console", (path, reply.code)
            assert path == "/console/logout" or reply.headers.get("Set-Cookie") is None
