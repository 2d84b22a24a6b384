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
    ("nowhere", None), ("main db; drop", None), ("other", "mysql://user:pw@host/db"), ("empty", "sqlite://"),
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


# ------------------------------------------------------------ files beyond the connection (issue #9, item 13)


@pytest.mark.parametrize("statement", [
    "ATTACH '{other}' AS other",
    "ATTACH 'file:{other}?mode=rwc' AS other",
    "VACUUM INTO '{other}'",
    "VACUUM INTO 'file:{other}'",
])
def test_sql_cannot_create_or_open_another_file(db, tmp_path, statement):
    other = tmp_path / "elsewhere" / "copy.db"
    other.parent.mkdir()
    error = failure("database", {"connection": "main_db", "query": statement.format(other=other)})
    assert error.error_type == "DatabaseAccessDenied"
    assert str(other) in error.message
    assert not other.exists()


def test_a_file_name_bound_as_a_parameter_is_refused_too(db, tmp_path):
    # SQLite asks about VACUUM INTO's file when it runs (with the bound value), about ATTACH's when it
    # compiles (with no name yet): both are refused.
    other = tmp_path / "bound.db"
    for query, said in (("VACUUM INTO :path", str(other)), ("ATTACH :path AS other", "computed at run time")):
        error = failure("database", {"connection": "main_db", "query": query, "parameters": {"path": str(other)}})
        assert error.error_type == "DatabaseAccessDenied"
        assert said in error.message
    assert not other.exists()


def test_an_existing_database_cannot_be_read_through_attach(db, tmp_path):
    secret = tmp_path / "secret.db"
    with sqlite3.connect(secret) as connection:
        connection.execute("CREATE TABLE keys (value TEXT)")
        connection.execute("INSERT INTO keys VALUES ('hunter2')")
    error = failure("database", {"connection": "main_db", "query": f"ATTACH '{secret}' AS s"})
    assert error.error_type == "DatabaseAccessDenied"
    error = failure("database", {"connection": "main_db", "query": "DETACH main"})
    assert error.error_type == "DatabaseAccessDenied"


@pytest.mark.parametrize("query, refused", [
    ("SELECT load_extension('/tmp/evil.so')", "load_extension"),
    ("SELECT load_extension('/tmp/evil.so', 'entry')", "load_extension"),
    ("PRAGMA temp_store_directory = '/tmp/elsewhere'", "temp_store_directory"),
    ("PRAGMA database_list", "database_list"),
    ("SELECT file FROM pragma_database_list", "database_list"),
    ("PRAGMA journal_mode = WAL", "journal_mode"),
    ("PRAGMA writable_schema = ON", "writable_schema"),
])
def test_extensions_and_file_pragmas_are_refused(db, query, refused):
    error = failure("database", {"connection": "main_db", "query": query})
    assert error.error_type == "DatabaseAccessDenied"
    assert refused in error.message


@pytest.mark.parametrize("query", [
    "SELECT count(*) AS n FROM users",
    "PRAGMA table_info(users)",
    "SELECT name FROM pragma_table_info('users')",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode",
    "PRAGMA foreign_keys = ON",
    "PRAGMA integrity_check",
    "VACUUM",
    "CREATE VIRTUAL TABLE docs USING fts5(body)",
    "SELECT value FROM json_each('[1, 2]')",
    "CREATE TRIGGER stamp AFTER INSERT ON users BEGIN UPDATE users SET processed = 0 WHERE id = new.id; END",
])
def test_ordinary_statements_still_work(db, query):
    run_type("database", {"connection": "main_db", "query": query})
