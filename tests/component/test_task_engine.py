"""Task types through the engine, end to end in local mode: http (a local server), shell, file, database,
llm, custom and email (the local stand-in's outbox); failures are typed and retry/catch match on them."""

from __future__ import annotations

import sqlite3
import time

from infra.tasks import outbox
from loopline.memory.local_mode import LocalMode
from statemachine.compiler import compile_workflow
from statemachine.diagnostics import WorkflowError
from tests.unit.test_task_settings import server, task_env  # noqa: F401


def run_to_end(text: str, inputs: dict | None = None, timeout: float = 30.0) -> tuple[LocalMode, dict]:
    mode = LocalMode()
    plan = compile_workflow(text, "t.yaml", mode.engine.settings.limits)  # what LOOPLINE_CUSTOM_MODULES allows
    run_id = mode.engine.start_run(plan, inputs or {})
    deadline = time.monotonic() + timeout
    while mode.engine.describe_run(run_id)["status"] == "RUNNING":
        assert time.monotonic() < deadline, mode.engine.describe_run(run_id)
        if not mode.pump_once():
            time.sleep(0.01)
    return mode, mode.engine.describe_run(run_id)


PIPELINE = """
workflow:
  metadata: {id: task_types_e2e}
  inputs:
    schema:
      type: object
      properties:
        recipient: {type: string}
        note: {type: string}
      required: [recipient, note]
  tasks:
    - id: fetch
      type: http
      config:
        method: GET
        url: "${inputs.base_url}/articles"
      outputs:
        - name: articles
          value: "${response.data.articles}"
          export: true
    - id: save
      type: file
      config:
        action: write
        path: "digest/articles.json"
        content: "${tasks.fetch.output.articles}"
    - id: count
      type: shell
      depends_on: [save]
      config:
        command: ["sh", "-c", "wc -c < \\"$1\\" | tr -d ' '; printf '%s' \\"$2\\" >&2", "sh",
                  "digest/articles.json", "${inputs.note}"]
      outputs:
        - name: size
          value: "${response.stdout}"
        - name: note_back
          value: "${response.stderr}"
    - id: read_back
      type: file
      depends_on: [count]
      config: {action: read, path: digest/articles.json}
    - id: summarize
      type: llm
      config:
        model: gpt-5.2
        prompt: "Summarize ${json_stringify(tasks.fetch.output.articles)}"
        response_format:
          type: object
          properties:
            summary: {type: string}
            key_points: {type: array, items: {type: string}}
          required: [summary, key_points]
      outputs:
        - name: digest
          value: "${response.summary}"
    - id: send
      type: email
      config:
        to: ["${inputs.recipient}"]
        subject: "Digest: ${tasks.fetch.output.articles.length} articles"
        body: "<p>${tasks.summarize.output.digest}</p><p>${tasks.count.output.size} bytes</p>"
  outputs:
    mappings:
      size: "${tasks.count.output.size}"
      note: "${tasks.count.output.note_back}"
      stored: "${tasks.read_back.output.content}"
      message: "${tasks.send.output.message_id}"
"""


def test_http_shell_file_llm_and_email_through_the_engine(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{server.port}")  # loopback is denied by default
    server.json("GET", "/articles", {"articles": [{"id": 1, "title": "One"}, {"id": 2, "title": "Two"}]})
    note = "hello; rm -rf / $(id)"
    text = PIPELINE.replace("${inputs.base_url}", server.url)
    _, view = run_to_end(text, {"recipient": "ada@example.com", "note": note})
    assert view["status"] == "COMPLETED", view
    tasks = view["tasks"]
    assert tasks["fetch"]["output"] == {"articles": [{"id": 1, "title": "One"}, {"id": 2, "title": "Two"}]}
    stored = '[{"id": 1, "title": "One"}, {"id": 2, "title": "Two"}]'
    assert (task_env / "digest/articles.json").read_text() == stored
    assert tasks["save"]["output"] == {"path": "digest/articles.json", "bytes": len(stored)}
    assert tasks["count"]["output"] == {"size": str(len(stored)), "note_back": note}
    assert view["outputs"]["stored"] == stored
    [mail] = outbox.entries("email")
    assert mail["run_id"] == view["run_id"] and mail["task_id"] == "send"
    assert mail["request"]["to"] == ["ada@example.com"]
    assert mail["request"]["subject"] == "Digest: 2 articles"
    digest = tasks["summarize"]["output"]["digest"]
    assert mail["request"]["body"] == f"<p>{digest}</p><p>{len(stored)} bytes</p>"
    assert view["outputs"]["message"] == mail["result"]["message_id"]
    [prompt] = outbox.entries("llm")
    assert prompt["request"]["prompt"].startswith('Summarize [{"id":1,"title":"One"}')


FAILING = """
workflow:
  metadata: {id: task_failures}
  tasks:
    - id: flaky
      type: http
      retry: {max_attempts: 3, delay: 10ms, retryable_errors: [HttpError]}
      config: {url: "BASE/flaky"}
    - id: escape
      type: file
      config: {action: read, path: "${inputs.path}"}  # known only at run time: the provider refuses it
    - id: fallback
      type: shell
      config: {command: ["echo", "handled ${error.type}"]}
  error_handling:
    catch:
      - {error_types: [FileAccessDenied], handler: fallback}
"""


def test_typed_failures_drive_retries_and_catch(task_env, server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{server.port}")  # loopback is denied by default
    answers = [503, 503, 200]
    server.routes[("GET", "/flaky")] = lambda r: (answers.pop(0), {"Content-Type": "application/json"}, "{}")
    _, view = run_to_end(FAILING.replace("BASE", server.url), {"path": "../../etc/passwd"})
    assert view["status"] == "COMPLETED", view
    assert view["tasks"]["flaky"]["status"] == "COMPLETED" and view["tasks"]["flaky"]["attempts"] == 3
    assert view["tasks"]["escape"]["status"] == "FAILED"
    assert view["tasks"]["escape"]["error"]["type"] == "FileAccessDenied"
    assert view["tasks"]["fallback"]["output"]["stdout"] == "handled FileAccessDenied"


DATABASE = """
workflow:
  metadata: {id: database_e2e}
  tasks:
    - id: load
      type: database
      config:
        connection: main_db
        query: "SELECT id, name, email FROM users WHERE processed = false ORDER BY id"
      outputs:
        - {name: records, value: "${response}", export: true}
    - id: log_invalid
      type: database
      config:
        connection: main_db
        query: "INSERT INTO invalid_records (data) VALUES (:data)"
        parameters:
          data: "${tasks.load.output.records}"
    - id: enrich
      type: custom
      config:
        handler: "tests.component.test_task_engine:enrich"
        parameters: {records: "${tasks.load.output.records}", suffix: "!"}
"""


def enrich(records, suffix):
    return [record["name"] + suffix for record in records]


def test_database_and_custom_through_the_engine(task_env, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "main.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, processed BOOLEAN)")
        db.execute("CREATE TABLE invalid_records (data TEXT)")
        db.executemany("INSERT INTO users (name, email, processed) VALUES (?, ?, ?)",
                       [("ada", "a@example.com", 0), ("bob", None, 0), ("cy", None, 1)])
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", f"sqlite://{path}")
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", __name__)  # deny by default: the deployment names its modules
    _, view = run_to_end(DATABASE)
    assert view["status"] == "COMPLETED", view
    records = [{"id": 1, "name": "ada", "email": "a@example.com"}, {"id": 2, "name": "bob", "email": None}]
    assert view["tasks"]["load"]["output"] == {"records": records}
    assert view["tasks"]["log_invalid"]["output"] == {"rowcount": 1}
    assert view["tasks"]["enrich"]["output"] == ["ada!", "bob!"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT data FROM invalid_records").fetchone()[0] == (
            '[{"id":1,"name":"ada","email":"a@example.com"},{"id":2,"name":"bob","email":null}]')


def test_a_query_built_from_data_fails_the_task(task_env, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", f"sqlite://{tmp_path / 'x.db'}")
    text = """
workflow:
  metadata: {id: injected}
  tasks:
    - id: q
      type: database
      config: {connection: main_db, query: "SELECT '${inputs.name}' AS n"}
"""
    try:
        compile_workflow(text, "t.yaml")
    except WorkflowError as exc:  # validation catches it once statemachine/dsl.py checks database queries
        assert "query" in str(exc)
        return
    _, view = run_to_end(text, {"name": "x' OR 1=1 --"})
    assert view["status"] == "FAILED"
    assert view["tasks"]["q"]["error"]["type"] == "InvalidConfig"
