"""Seed 000's front door as a user drives it: `loopline dev`, the `/workflow/...` routes, and the CLI
(`submit`, `status`, `resume --token`), each command a real process. The worked example of docs/api.md
is run here as written (its commands pointed at this test's server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_dev_server import dev_server, get_json, request

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
EXAMPLE = DOC[DOC.index("### A worked example"):]
BLOCKS = re.findall(r"^```console\n(.*?)^```$", EXAMPLE, re.MULTILINE | re.DOTALL)
DOC_URL = "http://127.0.0.1:8080"
PLACEHOLDERS = {"run_id": r"[0-9a-f]{32}", "token": r"[A-Za-z0-9_-]{20,}"}

BAD = "workflow:\n  metadata: {id: bad}\n  tasks:\n    - {id: a, type: nope}\n"
PAUSABLE = """
workflow:
  metadata: {id: pausable}
  tasks:
    - {id: nap, type: wait, config: {duration: 1h}}
"""


@pytest.fixture(scope="module")
def dev():
    yield from dev_server([str(BIN / "loopline")], cwd=ROOT)


def shell(command: str) -> subprocess.CompletedProcess:
    """``command`` as a user's shell runs it, this checkout's `loopline` first on the PATH."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120)


def loopline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "loopline"), *args], cwd=ROOT, text=True, capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def steps(block: str) -> list[tuple[str, str]]:
    """A console block's (command, what it prints) pairs."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in found]


def expected_pattern(text: str, known: dict[str, str], placeholders: dict[str, str] = PLACEHOLDERS) -> str:
    """The printed text as a regular expression: `…` any text, a placeholder (``{name}``: the pattern
    ``placeholders`` gives it) its value once known (else captured), everything else literal."""
    pattern, seen = "", set(known)
    marks = {"{" + name + "}" for name in placeholders}
    for piece in re.split("(…|" + "|".join(map(re.escape, sorted(marks))) + ")", text):
        name = piece[1:-1] if piece in marks else None
        if piece == "…":
            pattern += ".*?"
        elif name in known:
            pattern += re.escape(known[name])
        elif name in seen:
            pattern += f"(?P={name})"
        elif name:
            seen.add(name)
            pattern += f"(?P<{name}>{placeholders[name]})"
        else:
            pattern += re.escape(piece)
    return pattern


def wait_for_run(base: str, run_id: str, predicate, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        view = get_json(f"{base}/runs/{run_id}")[1]
        if predicate(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"run {run_id}: {view.get('status')}")


def test_the_worked_example_runs_as_written(dev):
    assert len(BLOCKS) == 2, "docs/api.md's worked example is two console blocks"
    known: dict[str, str] = {}
    for number, block in enumerate(BLOCKS):
        if number == 1:  # "Once the run has ended"
            wait_for_run(dev, known["run_id"], lambda v: v["status"] in ("COMPLETED", "FAILED"))
        for command, printed in steps(block):
            line = command
            for name, value in known.items():
                line = line.replace("{" + name + "}", value)
            line = line.replace(DOC_URL, dev)
            if line.startswith("loopline "):
                line += f" --url {dev}"
            done = shell(line + " 2>&1")
            expected = expected_pattern(printed.replace(DOC_URL, dev), known)
            match = re.fullmatch(expected, done.stdout.rstrip("\n"), re.DOTALL)
            assert match, f"$ {line}\nprinted:\n{done.stdout}\nexpected:\n{printed}"
            known.update({k: v for k, v in match.groupdict().items() if v})
            if command.startswith("loopline submit"):
                wait_for_run(dev, known["run_id"], lambda v: v["approvals"])
            assert "Traceback" not in done.stdout
    view = get_json(f"{dev}/runs/{known['run_id']}")[1]
    assert view["status"] == "COMPLETED" and view["tasks"]["request_manager_approval"]["output"]["decision"] == \
        "REJECTED"


def test_submit_by_file_registers_once_and_by_name_starts_it(dev, tmp_path):
    flow = tmp_path / "pausable.yaml"
    flow.write_text(PAUSABLE)
    first = loopline("submit", str(flow), "--json", "--url", dev)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 1
    answer = json.loads(first.stdout)
    assert answer["workflow_name"] == "pausable" and answer["status"] == "RUNNING"
    again = loopline("submit", str(flow), "--url", dev)  # the same content: no new version, a new run
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["workflow_id"] != answer["workflow_id"]
    versions = [w for w in get_json(f"{dev}/workflows")[1]["workflows"] if w["workflow_id"] == "pausable"]
    assert len(versions) == 1
    by_name = loopline("submit", "pausable", "--input", "{}", "--url", dev)
    assert by_name.returncode == 0 and json.loads(by_name.stdout)["workflow_name"] == "pausable"
    # `resume RUN_ID` still resumes a paused run.
    run_id = answer["workflow_id"]
    wait_for_run(dev, run_id, lambda v: v["tasks"]["nap"]["status"] == "WAITING")
    assert loopline("pause", run_id, "--url", dev).returncode == 0
    resumed = loopline("resume", run_id, "--url", dev)
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["changed"] is True
    assert get_json(f"{dev}/workflow/status/{run_id}")[1]["workflow_status"] == "RUNNING"


def test_submit_refusals_exit_2_with_one_line(dev, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    cases = [
        (["submit", str(bad)], f"{bad}:4:"),  # checked before anything is sent
        (["submit", "nobody"], "no registered workflow 'nobody' (HTTP 404)"),
        (["submit", "missing.yaml"], "missing.yaml: cannot read"),
        (["submit", "pausable", "--input", "[1]"], "the input must be a JSON object"),
        (["resume", "--token", "A" * 43, "--decision", "DENIED"], "unknown link (HTTP 404)"),
        (["resume", "--token", "A" * 43, "--decision", "MAYBE"], "invalid choice"),
        (["resume", "some_run", "--token", "A" * 43, "--decision", "DENIED"], "give no run id"),
    ]
    for args, said in cases:
        done = loopline(*args, "--url", dev)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert said in done.stdout + done.stderr and "Traceback" not in done.stderr, (args, done.stderr)


def test_another_origins_page_can_neither_start_nor_decide(dev, tmp_path):
    """The dev server refuses a browser page of another origin before any route runs, and a form it could
    post is not the confirmation page's (no anti-forgery value): nothing is started or decided."""
    flow = tmp_path / "ask.yaml"
    flow.write_text("workflow:\n  metadata: {id: ask_once}\n  tasks:\n"
                    "    - {id: ask, type: approval, config: {title: Go, approvers: [a@example.com], timeout: 1h}}\n")
    run_id = json.loads(loopline("submit", str(flow), "--url", dev).stdout)["workflow_id"]
    view = wait_for_run(dev, run_id, lambda v: v["approvals"])
    token = view["approvals"][0]["url"].rsplit("/", 1)[1]
    runs_before = len(get_json(f"{dev}/runs?workflow=ask_once")[1]["runs"])
    evil = {"Origin": "http://evil.test", "Content-Type": "application/x-www-form-urlencoded"}
    resume = f"{dev}/workflow/resume?token={token}&decision=APPROVED"
    assert request("POST", resume, raw=b"decision=APPROVED", headers=evil)[0] == 403
    assert request("POST", f"{dev}/workflow/start/ask_once", raw=b"", headers=evil)[0] == 403
    assert request("POST", resume, raw=b"decision=APPROVED&csrf=x",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 403
    # A GET of the link, however it asks, decides nothing.
    for accept in ("text/html", "application/json"):
        assert request("GET", resume, headers={"Accept": accept})[0] == 200
    time.sleep(1)
    view = get_json(f"{dev}/runs/{run_id}")[1]
    assert view["tasks"]["ask"]["status"] == "WAITING" and len(view["approvals"]) == 1
    assert len(get_json(f"{dev}/runs?workflow=ask_once")[1]["runs"]) == runs_before


def test_the_seeds_link_in_a_real_browser_confirms_then_decides(dev, tmp_path):
    """The seed's `GET /workflow/resume?token=&decision=APPROVED` opened in Chromium: a confirmation page
    (nothing decided yet), one button; pressing it decides and lands on the link's thank-you page."""
    from infra.tasks.browser.devtools import Chrome, chromium_path
    from tests.e2e.test_browser_approval import Tab

    binary = chromium_path()
    if binary is None:
        pytest.skip("Chromium is not installed (/usr/bin/chromium or LOOPLINE_CHROMIUM); `make system-deps`")
    flow = tmp_path / "confirm.yaml"
    flow.write_text("workflow:\n  metadata: {id: confirm_me}\n  tasks:\n"
                    "    - {id: ask, type: approval, config: {title: Ship, approvers: [a@example.com], timeout: 1h}}\n")
    run_id = json.loads(loopline("submit", str(flow), "--url", dev).stdout)["workflow_id"]
    token = wait_for_run(dev, run_id, lambda v: v["approvals"])["approvals"][0]["url"].rsplit("/", 1)[1]
    link = f"{dev}/workflow/resume?token={token}&decision=APPROVED"
    with Chrome(binary, time.monotonic() + 60) as chrome:
        tab = Tab(chrome)
        tab.goto(link)
        page = tab.js("({h1: document.querySelector('h1').textContent,"
                      " buttons: Array.from(document.querySelectorAll('button')).map(b => [b.value, b.textContent])})")
        assert page == {"h1": "Ship", "buttons": [["APPROVED", "Approve"]]}, page
        assert get_json(f"{dev}/runs/{run_id}")[1]["tasks"]["ask"]["status"] == "WAITING"  # the GET decided nothing
        tab.type_into("#comments", "fine by me")
        assert tab.click("button[value=APPROVED]") == "Approve"
        tab.wait_js("document.title === 'Thank you' && document.readyState === 'complete'")
        assert tab.js("location.href") == f"{dev}/approvals/{token}?done=1"
    view = wait_for_run(dev, run_id, lambda v: v["status"] == "COMPLETED", 30)
    assert view["tasks"]["ask"]["output"]["decision"] == "APPROVED"
    assert view["tasks"]["ask"]["output"]["comments"] == "fine by me"
