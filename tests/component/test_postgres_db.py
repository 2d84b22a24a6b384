"""The database task on a real PostgreSQL server (tests/postgres_server.py): the SQLite semantics, bound
parameters, one transaction, the egress policy in front of the server, and roles that reach files refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres_server import TASK_ROLE, pg_database, postgres_server, task_connection  # noqa: F401
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(task_env, pg_database, monkeypatch):  # noqa: F811
    server, name = pg_database
    with task_connection(server, name) as conn:
        conn.execute("CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT, email TEXT, processed BOOLEAN, "
                     "doc JSONB)")
        conn.execute("INSERT INTO users (name, email, processed, doc) VALUES ('ada', 'ada@example.com', false, "
                     "'{\"k\": 1}'), ('bob', NULL, false, NULL), ('cy', 'cy@example.com', true, NULL)")
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", server.url(name))
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{server.port}")
    return server, name


def rows_of(db, query):
    with task_connection(*db) as conn:
        return conn.execute(query).fetchall()


def test_select_returns_row_objects(db):
    rows = run_type("database", {"connection": "main_db", "query": "SELECT name, email FROM users "
                                 "WHERE processed = false ORDER BY id"})
    assert rows == [{"name": "ada", "email": "ada@example.com"}, {"name": "bob", "email": None}]


def test_named_parameters_are_bound_and_writes_return_the_rowcount(db):
    result = run_type("database", {"connection": "main_db",
                                   "query": "UPDATE users SET processed = :flag WHERE name = :name OR name = :name",
                                   "parameters": {"flag": True, "name": "bob"}})
    assert result == {"rowcount": 1}
    assert run_type("database", {"connection": "main_db", "query": "SELECT processed FROM users WHERE name = :n",
                                 "parameters": {"n": "bob"}}) == [{"processed": True}]


def test_a_list_binds_to_question_marks(db):
    assert run_type("database", {"connection": "main_db", "query": "INSERT INTO users (name, email) VALUES (?, ?)",
                                 "parameters": ["dee", "d@example.com"]}) == {"rowcount": 1}
    error = failure("database", {"connection": "main_db", "query": "SELECT ?, ?", "parameters": [1]})
    assert error.error_type == "DatabaseError"


def test_data_in_parameters_is_never_sql(db):
    hostile = "x'); DROP TABLE users; -- %s %(name)s :name"
    run_type("database", {"connection": "main_db", "query": "INSERT INTO users (name) VALUES (:name)",
                          "parameters": {"name": hostile}})
    assert rows_of(db, "SELECT count(*) FROM users") == [(4,)]
    assert rows_of(db, "SELECT name FROM users WHERE id = 4") == [(hostile,)]


def test_percent_signs_casts_and_jsonb_operators_keep_their_meaning(db):
    rows = run_type("database", {"connection": "main_db",
                                 "query": "SELECT name, 7 % 3 AS m, '5'::int AS five FROM users "
                                          "WHERE doc ? 'k' AND name LIKE :pattern",
                                 "parameters": {"pattern": "a%"}})
    assert rows == [{"name": "ada", "m": 1, "five": 5}]


def test_two_statements_are_refused_and_nothing_runs(db):
    error = failure("database", {"connection": "main_db", "query": "SELECT 1; DROP TABLE users"})
    assert error.error_type == "DatabaseError"
    assert rows_of(db, "SELECT count(*) FROM users") == [(3,)]


def test_lists_and_objects_are_bound_as_json(db):
    records = [{"name": "bob", "email": None}]
    run_type("database", {"connection": "main_db", "query": "CREATE TABLE invalid_records (data TEXT, errors JSONB)"})
    run_type("database", {"connection": "main_db",
                          "query": "INSERT INTO invalid_records (data, errors) VALUES (:data, :errors)",
                          "parameters": {"data": records, "errors": {"bob": ["Missing email"]}}})
    rows = run_type("database", {"connection": "main_db", "query": "SELECT data, errors FROM invalid_records"})
    assert json.loads(rows[0]["data"]) == records and rows[0]["errors"] == {"bob": ["Missing email"]}


def test_values_without_a_json_form_come_back_as_json(db):
    rows = run_type("database", {"connection": "main_db", "query":
                                 "SELECT 1.50::numeric AS d, 3::numeric AS i, '\\x00ff'::bytea AS b, "
                                 "'2024-01-02T03:04:05+00'::timestamptz AS ts, '2024-01-02'::date AS day, "
                                 "'90 seconds'::interval AS span, ARRAY[1, 2] AS arr, "
                                 "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '10.0.0.0/8'::cidr AS net"})
    assert rows == [{"d": 1.5, "i": 3, "b": "AP8=", "ts": "2024-01-02T03:04:05+00:00", "day": "2024-01-02",
                     "span": 90.0, "arr": [1, 2], "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                     "net": "10.0.0.0/8"}]


def test_errors_and_missing_parameters_are_database_errors_and_roll_back(db):
    assert failure("database", {"connection": "main_db", "query": "SELEC nonsense"}).error_type == "DatabaseError"
    error = failure("database", {"connection": "main_db", "query": "SELECT * FROM users WHERE id = :id"})
    assert error.error_type == "DatabaseError" and ":id" in error.message
    # one transaction: the first row is inserted, the second breaks the NOT NULL check, neither stays
    run_type("database", {"connection": "main_db", "query": "CREATE TABLE strict (v INT NOT NULL)"})
    error = failure("database", {"connection": "main_db", "query": "INSERT INTO strict VALUES (1), (NULL)"})
    assert error.error_type == "DatabaseError"
    assert rows_of(db, "SELECT count(*) FROM strict") == [(0,)]


def test_a_long_query_times_out_on_the_server(db):
    error = failure("database", {"connection": "main_db", "query": "SELECT pg_sleep(30)", "timeout": "1s"})
    assert error.error_type == "TaskTimeout"


def test_too_many_rows_fail_the_task(db):
    error = failure("database", {"connection": "main_db", "query": "SELECT g FROM generate_series(1, 10001) g"})
    assert error.error_type == "DatabaseError" and "LIMIT" in error.message
    assert len(run_type("database", {"connection": "main_db",
                                     "query": "SELECT g FROM generate_series(1, 10000) g"})) == 10_000


def test_a_read_only_connection_refuses_writes(db, monkeypatch):
    server, name = db
    monkeypatch.setenv("LOOPLINE_DB_REPORTS", server.url(name) + "?options=-c%20default_transaction_read_only%3Don")
    assert run_type("database", {"connection": "reports", "query": "SELECT count(*) AS n FROM users"}) == [{"n": 3}]
    for query in ("DELETE FROM users", "SET transaction_read_only = off"):
        assert failure("database", {"connection": "reports", "query": query}).error_type == "DatabaseError"
    assert rows_of(db, "SELECT count(*) FROM users") == [(3,)]


# ------------------------------------------------------------------ what keeps a task inside its database


def test_the_server_must_pass_the_egress_policy(db, monkeypatch):
    monkeypatch.delenv("LOOPLINE_EGRESS_ALLOW")
    error = failure("database", {"connection": "main_db", "query": "SELECT 1"})
    assert error.error_type == "EgressDenied" and "loopback" in error.message
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", "127.0.0.1:1")  # another port of the same host
    assert failure("database", {"connection": "main_db", "query": "SELECT 1"}).error_type == "EgressDenied"


def test_localhost_is_checked_as_the_address_it_resolves_to(db, monkeypatch):
    server, name = db
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", server.url(name, host="localhost"))
    monkeypatch.delenv("LOOPLINE_EGRESS_ALLOW")
    assert failure("database", {"connection": "main_db", "query": "SELECT 1"}).error_type == "EgressDenied"
    monkeypatch.setenv("LOOPLINE_EGRESS_ALLOW", f"127.0.0.1:{server.port},[::1]:{server.port}")
    assert run_type("database", {"connection": "main_db", "query": "SELECT 1 AS one"}) == [{"one": 1}]


@pytest.mark.parametrize("suffix", [
    "?host=/tmp", "?hostaddr=127.0.0.1", "?service=other", "?servicefile=/etc/passwd",
])
def test_urls_that_would_pick_another_server_are_refused(db, monkeypatch, suffix):
    server, name = db
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", server.url(name) + suffix)
    error = failure("database", {"connection": "main_db", "query": "SELECT 1"})
    assert error.error_type == "DatabaseConfigError"
    assert "task-pw" not in error.message


def test_a_failed_login_says_so_without_the_password(db, monkeypatch):
    server, name = db
    monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", server.url(name, password="wrong-pw-77"))
    error = failure("database", {"connection": "main_db", "query": "SELECT 1"})
    assert error.error_type == "DatabaseError" and "password authentication failed" in error.message
    assert "wrong-pw-77" not in error.message


def test_a_unix_socket_or_a_list_of_hosts_is_refused(db, monkeypatch):
    server, name = db
    for url in (f"postgresql://{TASK_ROLE}@/{name}?host={server.socket_dir}",
                f"postgresql://{TASK_ROLE}@127.0.0.1:{server.port},127.0.0.2:{server.port}/{name}"):
        monkeypatch.setenv("LOOPLINE_DB_MAIN_DB", url)
        assert failure("database", {"connection": "main_db", "query": "SELECT 1"}).error_type == "DatabaseConfigError"


@pytest.mark.parametrize("grant", [
    "ALTER ROLE {role} SUPERUSER",
    "GRANT pg_read_server_files TO {role}",
    "GRANT pg_execute_server_program TO {role}",
    "CREATE ROLE files_{role} NOLOGIN; GRANT pg_write_server_files TO files_{role}; GRANT files_{role} TO {role}",
])
def test_a_role_that_reaches_the_servers_files_is_refused(db, grant, monkeypatch):
    server, name = db
    role = f"r_{name}"
    with server.admin() as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
        for statement in grant.format(role=role).split("; "):
            admin.execute(statement)
    try:
        monkeypatch.setenv("LOOPLINE_DB_PRIV", server.url(name, user=role, password=f"pw-{role}"))
        error = failure("database", {"connection": "priv", "query": "SELECT 1"})
        assert error.error_type == "DatabaseAccessDenied" and "connect as a role without it" in error.message
    finally:
        with server.admin() as admin:
            admin.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
            admin.execute(f"DROP ROLE IF EXISTS files_{role}")


@pytest.mark.parametrize("query", [
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/loopline-pg-pwned'",
    "COPY users FROM '/etc/passwd'",
    "COPY users TO '/tmp/loopline-pg-pwned'",
    "SELECT lo_export(0, '/tmp/loopline-pg-pwned')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    f"ALTER ROLE {TASK_ROLE} SUPERUSER",
    "SELECT pg_reload_conf()",
    "CREATE EXTENSION dblink",
])
def test_a_plain_role_cannot_reach_files_programs_or_the_server_settings(db, query):
    error = failure("database", {"connection": "main_db", "query": query})
    assert error.error_type == "DatabaseAccessDenied", error.message
    assert not Path("/tmp/loopline-pg-pwned").exists()


def test_without_psycopg_the_task_fails_naming_the_extra(db):
    # An installation without the 'postgres' extra: psycopg cannot be imported.
    script = ("import sys; sys.modules['psycopg'] = None\n"
              "from tests.unit.test_task_settings import failure\n"
              "error = failure('database', {'connection': 'main_db', 'query': 'SELECT 1'})\n"
              "print(error.error_type, '|', error.message)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DatabaseConfigError |") and "'postgres' extra" in done.stdout
    assert "Traceback" not in done.stderr
