"""The three example workflows of seed 003 §3.5 (examples/seed/), run as a user runs them.

Their outside services are a local HTTP server here (their base URLs are inputs whose
defaults are the seed's), the database is SQLite by configuration, and the llm and email
tasks use the local stand-ins the embedded default configures.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.test_dev_server import get_json, request, server  # noqa: F401  (the dev server fixture)
from tests.postgres_server import pg_database, postgres_server, task_connection  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed"
LOOPLINE = str(Path(sys.executable).with_name("loopline"))


@pytest.fixture(scope="module", autouse=True)
def dev_server_may_reach_loopback():
    """The dev server these tests share starts with the deployment's egress allowlist naming 127.0.0.1 (tasks
    may not reach loopback otherwise), since the outside APIs here are local servers on ports chosen later."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1")
        yield


@pytest.fixture
def outside(monkeypatch):
    """The seed's outside APIs: records every request, answers JSON. Tasks in this process and in the
    `loopline run` it starts may reach it: the egress allowlist names it."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length else None
            seen.append({"method": self.command, "path": self.path, "body": body,
                         "authorization": self.headers.get("Authorization")})
            if self.path.startswith("/articles"):
                reply = {"articles": [{"title": "Durable engines"}, {"title": "Sagas"}, {"title": "Timers"}]}
            else:
                reply = {"ok": True, "received": body}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{httpd.server_address[1]}")
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def run_cli(path: Path, inputs: dict, env: dict | None = None) -> dict:
    done = subprocess.run([LOOPLINE, "run", str(path), "--json", "--input", json.dumps(inputs)],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_email_digest(outside):
    url, seen = outside
    view = run_cli(SEED / "email_digest.yaml",
                   {"recipient": "reader@example.com", "topics": ["engines"], "news_api": url},
                   {"NEWS_API_KEY": "k-123", "LOOPLINE_EXPOSED_ENV": "NEWS_API_KEY"})
    assert view["status"] == "COMPLETED"
    assert view["outputs"] == {"status": "completed", "articles_count": 3}
    assert seen[0]["path"] == "/articles" and seen[0]["authorization"] == "Bearer k-123"
    assert isinstance(view["tasks"]["summarize"]["output"]["digest_content"], str)
    assert view["tasks"]["send_email"]["output"]["to"] == ["reader@example.com"]


def test_data_pipeline(outside, tmp_path):
    url, seen = outside
    db = tmp_path / "main.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE raw_data (id INTEGER, name TEXT, email TEXT, processed BOOLEAN)")
        conn.execute("CREATE TABLE invalid_records (data TEXT, errors TEXT)")
        conn.executemany("INSERT INTO raw_data VALUES (?, ?, ?, ?)", [
            (1, "ada lovelace", "ADA@EXAMPLE.COM", False), (2, "", "nobody@example.com", False),
            (3, "alan turing", "alan@example.com", False), (4, "old", "old@example.com", True)])
    view = run_cli(SEED / "data_pipeline.yaml", {"enrichment_api": url}, {"LOOPLINE_DB_MAIN_DB": f"sqlite:///{db}"})
    assert view["status"] == "COMPLETED", view
    merged = view["tasks"]["process_valid"]["output"]
    # a python task that sets no `result` gives an object of the names it defined
    assert merged["transformed"] == {"transformed": [
        {"id": 1, "full_name": "Ada Lovelace", "email": "ada@example.com"},
        {"id": 3, "full_name": "Alan Turing", "email": "alan@example.com"}]}
    assert [r["id"] for r in merged["enriched"]["data"]["received"]] == [1, 3]
    assert view["tasks"]["handle_invalid"]["output"]["result"] is True
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data, errors FROM invalid_records").fetchall()
    assert len(rows) == 1 and json.loads(rows[0][0])[0]["id"] == 2 and "Missing name" in rows[0][1]
    assert any(r["path"] == "/batch" for r in seen)


def test_data_pipeline_on_postgresql(outside, pg_database):  # noqa: F811
    # The same workflow, unchanged, on a real PostgreSQL server: only the connection's URL differs.
    url, seen = outside
    pg, name = pg_database
    with task_connection(pg, name) as conn:
        conn.execute("CREATE TABLE raw_data (id INTEGER, name TEXT, email TEXT, processed BOOLEAN)")
        conn.execute("CREATE TABLE invalid_records (data TEXT, errors TEXT)")
        conn.execute("INSERT INTO raw_data VALUES (1, 'ada lovelace', 'ADA@EXAMPLE.COM', false), "
                     "(2, '', 'nobody@example.com', false), (3, 'alan turing', 'alan@example.com', false), "
                     "(4, 'old', 'old@example.com', true)")
    allow = f"{os.environ['LOOPLINE_EGRESS_ALLOW']},127.0.0.1:{pg.port}"  # the outside API's port and the server's
    view = run_cli(SEED / "data_pipeline.yaml", {"enrichment_api": url},
                   {"LOOPLINE_DB_MAIN_DB": pg.url(name), "LOOPLINE_EGRESS_ALLOW": allow})
    assert view["status"] == "COMPLETED", view
    assert [r["id"] for r in view["tasks"]["load_data"]["output"]["records"]] == [1, 2, 3]
    merged = view["tasks"]["process_valid"]["output"]
    assert merged["transformed"] == {"transformed": [
        {"id": 1, "full_name": "Ada Lovelace", "email": "ada@example.com"},
        {"id": 3, "full_name": "Alan Turing", "email": "alan@example.com"}]}
    assert view["tasks"]["handle_invalid"]["output"]["result"] is True
    with task_connection(pg, name) as conn:
        rows = conn.execute("SELECT data, errors FROM invalid_records").fetchall()
    assert len(rows) == 1 and json.loads(rows[0][0])[0]["id"] == 2 and "Missing name" in rows[0][1]
    assert any(r["path"] == "/batch" for r in seen)


def test_content_review_with_human_approvals(outside, server):  # noqa: F811
    url, seen = outside
    items = [{"title": f"Post {i}", "body": f"Body of post {i}"} for i in range(3)]
    workflow = (SEED / "content_review.yaml").read_text()
    status, _, text = request("POST", f"{server}/runs", {
        "workflow": workflow, "input": {"content_items": items, "approver_email": "editor@example.com",
                                        "cms_api": url}})
    assert status == 201, text
    run_id = json.loads(text)["run_id"]
    decided: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = get_json(f"{server}/runs/{run_id}")[1]
        if view["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        for entry in view["approvals"]:
            if entry["url"] in decided:
                continue
            title = get_json(entry["url"])[1]["title"]
            decision = "REJECTED" if not decided else "APPROVED"  # reject the first review asked for
            request("POST", entry["url"], {"decision": decision, "comments": f"{decision.lower()} by test"})
            decided[entry["url"]] = decision
            assert "Approve" in title or "Human Review" in title
        time.sleep(0.2)
    assert view["status"] == "COMPLETED", view
    published = next(r for r in seen if r["path"] == "/publish")["body"]
    statuses = [o["status"] for o in view["tasks"]["review_loop"]["output"]]
    assert len(statuses) == 3
    assert published == [item for item, s in zip(items, statuses) if s == "approved"]
    if decided:  # the stand-in LLM's scores decide which items need a human
        assert list(decided.values()).count("REJECTED") == statuses.count("rejected")
    subject = view["tasks"]["notify_results"]["output"]["subject"]
    assert subject == "Content Review Complete"
