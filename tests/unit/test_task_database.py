"""The database task type: sqlite by connection name, bound parameters only."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401


@pytest.fixture
def db(task_env, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "main.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, processed BOOLEAN)")
        connection.executemany("INSERT INTO users (name, email, processed) VALUES (?, ?, ?)",
                               [("ada", "ada@example.com", 0), ("bob", None, 0), ("cy", "cy@example.com", 1)])
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", f"sqlite://{path}")
    return path


def test_select_returns_row_dicts(db):
    rows = run_type("database", {"connection": "main_db", "query": "SELECT name, email FROM users "
                                 "WHERE processed = false ORDER BY id"})
    assert rows == [{"name": "ada", "email": "ada@example.com"}, {"name": "bob", "email": None}]


def test_named_parameters_are_bound_and_writes_return_the_rowcount(db):
    result = run_type("database", {"connection": "main_db",
                                   "query": "UPDATE users SET processed = :flag WHERE name = :name",
                                   "parameters": {"flag": True, "name": "bob"}})
    assert result == {"rowcount": 1}
    rows = run_type("database", {"connection": "main_db", "query": "SELECT processed FROM users WHERE name = :n",
                                 "parameters": {"n": "bob"}})
    assert rows == [{"processed": 1}]


def test_data_in_parameters_is_never_sql(db):
    hostile = "x'); DROP TABLE users; --"
    run_type("database", {"connection": "main_db", "query": "INSERT INTO users (name) VALUES (:name)",
                          "parameters": {"name": hostile}})
    rows = run_type("database", {"connection": "main_db", "query": "SELECT count(*) AS n FROM users"})
    assert rows == [{"n": 4}]
    assert run_type("database", {"connection": "main_db", "query": "SELECT name FROM users WHERE id = 4"}) == [
        {"name": hostile}]


def test_a_query_built_from_an_expression_is_refused(db):
    # What the engine passes: the rendered query, and the node's query as written.
    error = failure("database", {"connection": "main_db", "query": "SELECT * FROM users WHERE name = 'ada'"},
                    raw={"connection": "main_db", "query": "SELECT * FROM users WHERE name = '${inputs.name}'"})
    assert error.error_type == "InvalidConfig"
    assert "parameters" in error.message


def test_two_statements_are_refused(db):
    error = failure("database", {"connection": "main_db", "query": "SELECT 1; DROP TABLE users"})
    assert error.error_type == "DatabaseError"
    assert run_type("database", {"connection": "main_db", "query": "SELECT count(*) AS n FROM users"}) == [{"n": 3}]


def test_lists_and_objects_are_bound_as_json(db):
    run_type("database", {"connection": "main_db", "query": "CREATE TABLE invalid_records (data TEXT, errors TEXT)"})
    records = [{"name": "bob", "email": None}]
    run_type("database", {"connection": "main_db",
                          "query": "INSERT INTO invalid_records (data, errors) VALUES (:data, :errors)",
                          "parameters": {"data": records, "errors": {"bob": ["Missing email"]}}})
    rows = run_type("database", {"connection": "main_db", "query": "SELECT data, errors FROM invalid_records"})
    assert json.loads(rows[0]["data"]) == records
    assert json.loads(rows[0]["errors"]) == {"bob": ["Missing email"]}


def test_sql_errors_and_missing_parameters_are_database_errors(db):
    assert failure("database", {"connection": "main_db", "query": "SELEC nonsense"}).error_type == "DatabaseError"
    error = failure("database", {"connection": "main_db", "query": "SELECT * FROM users WHERE id = :id"})
    assert error.error_type == "DatabaseError"
    assert "id" in error.message


@pytest.mark.parametrize("connection, url", [
    ("nowhere", None), ("main db; drop", None), ("other", "postgresql://user:pw@host/db"), ("empty", "sqlite://"),
])
def test_unknown_or_unsupported_connections_are_config_errors(task_env, monkeypatch, connection, url):  # noqa: F811
    if url:
        monkeypatch.setenv(f"LOOPLINE_DB_{connection.upper()}", url)
    error = failure("database", {"connection": connection, "query": "SELECT 1"})
    assert error.error_type == "DatabaseConfigError"
    assert "pw" not in error.message


def test_in_memory_databases_live_for_the_process_per_name(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_DB_SCRATCH", "sqlite://:memory:")
    run_type("database", {"connection": "scratch", "query": "CREATE TABLE IF NOT EXISTS t (v INTEGER)"})
    run_type("database", {"connection": "scratch", "query": "DELETE FROM t"})
    run_type("database", {"connection": "scratch", "query": "INSERT INTO t VALUES (:v)", "parameters": {"v": 7}})
    assert run_type("database", {"connection": "scratch", "query": "SELECT v FROM t"}) == [{"v": 7}]


def test_a_long_query_times_out(db):
    query = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS m FROM c")
    error = failure("database", {"connection": "main_db", "query": query, "timeout": "200ms"})
    assert error.error_type == "TaskTimeout"


def test_blobs_come_back_as_base64(db):
    rows = run_type("database", {"connection": "main_db", "query": "SELECT x'00ff' AS b"})
    assert rows == [{"b": "AP8="}]
