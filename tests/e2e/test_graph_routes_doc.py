"""Seed 004's graph API as a user drives it: docs/graph-form.md's worked example over HTTP, run as written
(each `curl` a real process, pointed at this test's `loopline dev`), and the dev server's defenses on the
/graph routes: another origin's page can neither create, run nor resume, and a resume without a body
from the same machine (the seed's) is taken."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from tests.doc_blocks import blocks
from tests.e2e.test_dev_server import dev_server, get_json, request
from tests.e2e.test_seed_front_door import BIN, ROOT, expected_pattern, steps

PAGE = blocks("graph-form.md")
SECTION = [text for kind, text in PAGE if kind in ("json", "shell")]
DOC_URL = "http://127.0.0.1:8080"
PLACEHOLDERS = {"graph_id": r"[0-9a-f]{64}", "run_id": r"[0-9a-f]{32}"}
# Before the 2nd block the run waits at its approval node; before the 3rd it has ended.
WAIT_BEFORE = {1: "awaiting_approval", 2: "completed"}


@pytest.fixture(scope="module")
def dev():
    yield from dev_server([str(BIN / "loopline")], cwd=ROOT)


def graph_state(dev: str, run_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = get_json(f"{dev}/graph/state/{run_id}")[1]
        if state.get("status") == status:
            return state
        time.sleep(0.2)
    raise AssertionError(f"run {run_id}: {state}")


def test_the_worked_example_runs_as_written(dev, tmp_path):
    kinds = [kind for kind, text in PAGE if kind in ("json", "shell")]
    assert kinds == ["json", "shell", "shell", "shell"], "the page's HTTP example: a file and three sessions"
    (tmp_path / "refund.json").write_text(SECTION[0], encoding="utf-8")
    known: dict[str, str] = {}
    for number, block in enumerate(SECTION[1:]):
        if number in WAIT_BEFORE:
            graph_state(dev, known["run_id"], WAIT_BEFORE[number])
        for command, printed in steps(block):
            line = command
            for name, value in known.items():
                line = line.replace("{" + name + "}", value)
            line = line.replace(DOC_URL, dev)
            done = subprocess.run(["bash", "-c", line + " 2>&1"], cwd=tmp_path, text=True, capture_output=True,
                                  timeout=120, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
            match = re.fullmatch(expected_pattern(printed, known, PLACEHOLDERS), done.stdout.rstrip("\n"), re.DOTALL)
            assert match, f"$ {line}\nprinted:\n{done.stdout}\nexpected:\n{printed}"
            known.update({k: v for k, v in match.groupdict().items() if v})
    view = get_json(f"{dev}/runs/{known['run_id']}")[1]
    assert view["status"] == "COMPLETED" and view["tasks"]["pay"]["output"]["context"]["paid"] == 250


def bare_post(url: str, headers: dict[str, str]) -> int:
    """A POST with no body and no Content-Type (what urllib cannot send): the seed's resume."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", parts.path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


APPROVING = {"nodes": [{"id": "ask", "type": "approval",
                        "config": {"title": "Go?", "approvers": ["a@example.com"], "timeout": "1h"}},
                       {"id": "done", "type": "wait", "config": {"duration": "0s"}}],
             "edges": [{"source": "ask", "target": "done", "condition": "${context.approved}"}]}


def test_another_origins_page_can_neither_create_run_nor_resume_and_the_seeds_bare_resume_is_taken(dev):
    status, _, text = request("POST", f"{dev}/graph/create", APPROVING)
    assert status == 201, text
    graph_id = json.loads(text)["graph_id"]
    status, _, text = request("POST", f"{dev}/graph/run", {"graph_id": graph_id})
    assert status == 202, text
    run_id = json.loads(text)["run_id"]
    graph_state(dev, run_id, "awaiting_approval")
    evil = {"Origin": "http://evil.test"}
    changed = {**APPROVING, "id": "evil"}
    assert request("POST", f"{dev}/graph/create", changed, headers=evil)[0] == 403
    assert request("POST", f"{dev}/graph/run", {"graph_id": graph_id}, headers=evil)[0] == 403
    assert request("POST", f"{dev}/graph/resume/{run_id}", {}, headers=evil)[0] == 403
    assert bare_post(f"{dev}/graph/resume/{run_id}", evil) == 403
    # What a page can send without a preflight, from any origin: refused as no JSON.
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        assert request("POST", f"{dev}/graph/resume/{run_id}", raw=b"{}",
                       headers={"Content-Type": content_type})[0] == 415
    time.sleep(1)
    assert graph_state(dev, run_id, "awaiting_approval")["current_node_id"] == "ask"
    assert get_json(f"{dev}/runs?workflow=graph")[1]["runs"][0]["run_id"] == run_id  # no run started
    assert bare_post(f"{dev}/graph/resume/{run_id}", {}) == 200  # the seed's resume: approves
    assert graph_state(dev, run_id, "completed")["state"]["decision"] == "APPROVED"
