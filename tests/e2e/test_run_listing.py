"""The run listing as a user drives it: a real `loopline dev` process, its HTTP routes (GET /runs,
GET /runs/counts, a run's timings and attempts, a loop's iterations) and `loopline runs` /
`loopline status` against it."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_dev_server import get_json, request

# The CLI of this checkout (an installed `loopline` script may point at another one).
ROOT = Path(__file__).resolve().parents[2]
LOOPLINE = [sys.executable, "-m", "loopline.cli"]

DOC = (ROOT / "docs" / "runs-api.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group(1), m.group(2)) for m in _FENCE.finditer(DOC)]
# The page's two workflows are the ones its examples (and these tests) run.
DONE, LOOP = (text for kind, text in BLOCKS if kind == "yaml")
ITEMS = 25


def _ended(base: str, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = get_json(f"{base}/runs/{run_id}")[1]
        if view["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return view
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {view['status']}")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    # Port 0: the server picks a free port and prints its URL (to stderr, kept in a file).
    log = tmp_path_factory.mktemp("dev") / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen([*LOOPLINE, "dev", "--port", "0"], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
    found = None
    deadline = time.monotonic() + 60
    while found is None and time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", log.read_text())
        time.sleep(0.2)
    if found is None:
        proc.kill()
        raise RuntimeError(log.read_text())
    base = found.group(1)
    runs = {"quick": [], "loop": None}
    for _ in range(3):
        status, _, text = request("POST", f"{base}/runs", {"workflow": DONE, "input": {}})
        assert status == 201, text
        runs["quick"].append(json.loads(text)["run_id"])
    status, _, text = request("POST", f"{base}/runs", {"workflow": LOOP, "input": {"items": list(range(ITEMS))}})
    assert status == 201, text
    runs["loop"] = json.loads(text)["run_id"]
    views = {run_id: _ended(base, run_id) for run_id in [*runs["quick"], runs["loop"]]}
    yield base, runs, views
    proc.terminate()
    proc.wait(timeout=15)


def test_runs_newest_first_in_pages_by_cursor(dev):
    base, runs, views = dev
    newest_first = sorted(views, key=lambda r: (views[r]["created_at"], r), reverse=True)
    status, page = get_json(f"{base}/runs?limit=3")
    assert status == 200 and page["limit"] == 3
    assert [r["run_id"] for r in page["runs"]] == newest_first[:3] and page["next_cursor"]
    status, rest = get_json(f"{base}/runs?limit=3&cursor={page['next_cursor']}")
    assert status == 200 and [r["run_id"] for r in rest["runs"]] == newest_first[3:] and rest["next_cursor"] is None
    first = page["runs"][0]
    assert set(first) == {"run_id", "workflow_id", "status", "created_at", "ended_at", "duration_ms", "parent"}
    assert first["ended_at"] == views[first["run_id"]]["ended_at"] and first["duration_ms"] >= 0


def test_runs_filtered_by_status_workflow_and_time(dev):
    base, runs, views = dev
    assert [r["run_id"] for r in get_json(f"{base}/runs?status=FAILED")[1]["runs"]] == [runs["loop"]]
    assert sorted(r["run_id"] for r in get_json(f"{base}/runs?workflow=listing_ok")[1]["runs"]) == sorted(runs["quick"])
    both = get_json(f"{base}/runs?workflow=listing_ok&status=completed&limit=1")[1]
    assert len(both["runs"]) == 1 and both["runs"][0]["status"] == "COMPLETED" and both["next_cursor"]
    oldest = min(views.values(), key=lambda v: v["created_at"])
    after_oldest = get_json(f"{base}/runs?until={oldest['created_at']}")[1]
    assert after_oldest["runs"] == []
    since = get_json(f"{base}/runs?since={oldest['created_at']}&limit=200")[1]
    assert {r["run_id"] for r in since["runs"]} == set(views)
    assert get_json(f"{base}/runs?since=2999-01-01")[1]["runs"] == []


@pytest.mark.parametrize("query, fragment", [
    ("status=bogus", "'status' must be one of"),
    ("since=yesterday", "'since' must be an ISO-8601"),
    ("until=2030-13-01", "'until' must be an ISO-8601"),
    ("limit=0", "'limit' must be a whole number from 1 to 200"),
    ("limit=201", "'limit'"),
    ("limit=-1", "'limit'"),
    ("limit=1e3", "'limit'"),
    ("cursor=garbage!!", "'cursor'"),
    ("cursor=" + base64.urlsafe_b64encode(b'{"c": 1}').decode(), "'cursor'"),
    ("cursor=" + base64.urlsafe_b64encode(b'[1, 2]').decode(), "'cursor'"),
    ("stauts=FAILED", "unknown parameter 'stauts'"),
    ("workflow=" + "w" * 300, "'workflow'"),
])
def test_bad_listing_requests_are_400_with_a_reason(dev, query, fragment):
    base, _, _ = dev
    status, body = get_json(f"{base}/runs?{query}")
    assert status == 400 and fragment in body["error"]


def test_a_cursor_only_serves_the_filters_it_was_issued_for(dev):
    base, _, _ = dev
    cursor = get_json(f"{base}/runs?limit=1")[1]["next_cursor"]
    status, body = get_json(f"{base}/runs?limit=1&status=FAILED&cursor={cursor}")
    assert status == 400 and "'cursor'" in body["error"]
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, "c": "not a time"}).encode()).decode()
    assert get_json(f"{base}/runs?limit=1&cursor={forged}")[0] == 400


def test_counts_by_status(dev):
    base, _, _ = dev
    status, body = get_json(f"{base}/runs/counts")
    assert status == 200 and body["total"] == 4
    assert body["counts"] == {"RUNNING": 0, "PAUSED": 0, "COMPENSATING": 0, "COMPLETED": 3, "FAILED": 1,
                              "CANCELLED": 0}
    assert get_json(f"{base}/runs/counts?workflow=listing_loop")[1]["counts"]["FAILED"] == 1
    assert get_json(f"{base}/runs/counts?workflow=listing_loop")[1]["counts"]["COMPLETED"] == 0
    assert get_json(f"{base}/runs/counts?status=FAILED")[0] == 400
    assert get_json(f"{base}/runs/counts?since=soon")[0] == 400
    assert get_json(f"{base}/runs/counts?since=2999-01-01")[1]["total"] == 0


def test_a_run_shows_times_attempts_and_errors_of_each_task(dev):
    base, runs, views = dev
    view = views[runs["loop"]]
    for key in ("run_id", "status", "outputs", "error", "tasks", "approvals", "callbacks", "created_at", "ended_at"):
        assert key in view  # the contract's fields stay as they were
    assert view["tasks"]["flaky"] == {"status": "FAILED", "output": None, "attempts": 2,  # as it always was
                                      "error": {"type": "ValueError", "message": "no luck"},
                                      "printed": view["tasks"]["flaky"]["printed"]}
    flaky = view["timing"]["flaky"]
    assert [a["attempt"] for a in flaky["attempt_log"]] == [1, 2]
    assert all(a["error"] == {"type": "ValueError", "message": "no luck"} for a in flaky["attempt_log"])
    first, second = flaky["attempt_log"]
    assert first["started_at"] <= first["ended_at"] <= second["started_at"] <= second["ended_at"]
    assert flaky["queued_at"] == view["created_at"] and flaky["started_at"] == first["started_at"]
    assert flaky["ended_at"] == second["ended_at"] and flaky["duration_ms"] >= 1000  # the retry waited 1 s
    assert view["timing"]["each"]["iterations"] == ITEMS and view["duration_ms"] >= 0
    assert view["parent"] is None


def test_iterations_in_pages(dev):
    base, runs, _ = dev
    url = f"{base}/runs/{runs['loop']}/tasks/each/iterations"
    seen, cursor = [], "0"
    while cursor is not None:
        status, page = get_json(f"{url}?limit=10&cursor={cursor}")
        assert status == 200 and page["total"] == ITEMS and len(page["iterations"]) <= 10
        seen += page["iterations"]
        cursor = page["next_cursor"]
    assert [i["index"] for i in seen] == list(range(ITEMS))
    assert all(i["status"] == "COMPLETED" and i["tasks"] == {"step": "COMPLETED"} for i in seen)
    assert all(i["started_at"] <= i["ended_at"] and "woke_at" in i["output"] for i in seen)
    assert get_json(f"{url}?cursor=-1")[0] == 400
    assert get_json(f"{url}?limit=101")[0] == 400
    assert get_json(f"{url}?page=2")[0] == 400
    assert get_json(f"{url}?cursor=999")[1]["iterations"] == []
    assert get_json(f"{base}/runs/{runs['loop']}/tasks/flaky/iterations")[0] == 404
    assert get_json(f"{base}/runs/nope/tasks/each/iterations")[0] == 404


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LOOPLINE, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_cli_runs_and_status(dev):
    base, runs, _ = dev
    listed = _cli("runs", "--url", base, "--status", "FAILED", "--json")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [runs["loop"]]
    table = _cli("runs", "--url", base, "--workflow", "listing_ok", "--limit", "2")
    assert table.returncode == 0 and len([ln for ln in table.stdout.splitlines() if "COMPLETED" in ln]) == 2
    assert "more: loopline runs --cursor" in table.stdout
    shown = _cli("status", runs["loop"], "--url", base)
    assert shown.returncode == 0 and f"run {runs['loop']} (listing_loop): FAILED" in shown.stdout
    assert "attempt 1: ValueError: no luck" in shown.stdout and "iterations=25" in shown.stdout
    as_json = _cli("status", runs["loop"], "--url", base, "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["timing"]["flaky"]["attempt_log"][1]["attempt"] == 2


def test_cli_refusals_exit_2_with_a_reason(dev):
    base, _, _ = dev
    unknown = _cli("status", "no-such-run", "--url", base)
    assert unknown.returncode == 2 and "no run with id" in unknown.stderr and not unknown.stdout
    bad = _cli("runs", "--url", base, "--since", "last week")
    assert bad.returncode == 2 and "'since' must be an ISO-8601" in bad.stderr
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for command in (["runs"], ["status", "r1"]):
        down = _cli(*command, "--url", f"http://127.0.0.1:{closed}")
        assert down.returncode == 2 and "no loopline API answers" in down.stderr and "loopline dev" in down.stderr
        assert "Traceback" not in down.stderr


def _contains(actual, expected) -> bool:
    """The page's convention: "…" is any value, a dict names some keys, a list its first entries."""
    if expected == "…":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) >= len(expected)
                and all(_contains(a, e) for a, e in zip(actual, expected)))
    return actual == expected


def test_the_pages_examples_answer_as_shown(dev):
    base, runs, _ = dev
    examples = [(text, BLOCKS[i + 1][1]) for i, (kind, text) in enumerate(BLOCKS) if kind == "http"]
    assert len(examples) >= 8 and all(BLOCKS[i + 1][0] == "json" for i, (k, _) in enumerate(BLOCKS) if k == "http")
    cursor = None
    for request_text, expected_text in examples:
        line, status_line = request_text.splitlines()[:2]
        method, path = line.split(" ", 1)
        path = path.replace("{run_id}", runs["loop"]).replace("{cursor}", str(cursor))
        status, body = get_json(base + path)
        assert method == "GET" and status_line == f"# => {status}", (line, status, body)
        assert _contains(body, json.loads(expected_text)), (line, body)
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
