"""The ``database`` task type: one SQL statement with bound parameters, on a connection named by configuration.

``config.connection`` is a name; the deployment maps it to a URL with the
environment variable ``LOOPLINE_DB_<NAME>`` (read once into TaskSettings.databases) (upper-cased, other characters
than letters and digits become ``_``): ``sqlite:///absolute/path.db``,
``sqlite://relative.db`` or ``sqlite://:memory:`` (one in-memory database per
name and process), or ``postgresql://user:password@host:5432/dbname``
(postgres.py, with psycopg from the ``postgres`` extra). The workflow never holds a
URL or a password.

Values reach the SQL only as bound parameters: ``config.parameters`` is an
object bound to ``:name`` placeholders (a list binds to ``?``); lists and
objects are bound as their JSON text. A query containing ``${...}`` is refused:
it would build SQL from data.

A SQLite connection works only in its own database: ``sqlite_guard.py``
refuses ATTACH, VACUUM INTO, extension loading and file-touching PRAGMAs
(``DatabaseAccessDenied``).
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from . import common
from .base import TaskFailure
from .common import TaskMeta
from .egress import EgressPolicy
from .sqlite_guard import DATABASE_DENIED, SqliteGuard

CONFIG_ERROR = "DatabaseConfigError"
DATABASE_ERROR = "DatabaseError"
DEFAULT_TIMEOUT = 30.0
MAX_ROWS = 10_000
POSTGRES_SCHEMES = ("postgresql", "postgres")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class Database(Protocol):
    def execute(self, query: str, parameters: dict[str, Any] | list[Any], timeout: float) -> Any: ...


def env_name(connection: str) -> str:
    return "LOOPLINE_DB_" + re.sub(r"[^A-Za-z0-9]", "_", connection).upper()


def _bindable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


_memory_lock = threading.Lock()
_memory_anchors: dict[str, sqlite3.Connection] = {}


class SqliteDatabase:
    def __init__(self, name: str, target: str):
        self.name = name
        self.target = target

    def _connect(self, timeout: float) -> sqlite3.Connection:
        if self.target == ":memory:":
            uri = f"file:loopline-{self.name}?mode=memory&cache=shared"
            with _memory_lock:
                if uri not in _memory_anchors:  # keeps the shared in-memory database alive for the process
                    _memory_anchors[uri] = sqlite3.connect(uri, uri=True, check_same_thread=False)
            return sqlite3.connect(uri, uri=True, timeout=min(timeout, 5.0))
        return sqlite3.connect(self.target, timeout=min(timeout, 5.0))

    def execute(self, query: str, parameters: dict[str, Any] | list[Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        try:
            connection = self._connect(timeout)
        except sqlite3.Error as exc:
            raise TaskFailure(DATABASE_ERROR, f"cannot open database '{self.name}': {exc}") from exc
        guard = SqliteGuard()
        guard.install(connection)
        timed_out = False

        def check_deadline() -> int:
            nonlocal timed_out
            timed_out = time.monotonic() > deadline
            return 1 if timed_out else 0  # non-zero interrupts the statement

        connection.set_progress_handler(check_deadline, 10_000)
        try:
            with connection:  # commits on success, rolls back on error
                cursor = connection.execute(query, parameters)
                if cursor.description is None:
                    return {"rowcount": cursor.rowcount}
                columns = [column[0] for column in cursor.description]
                rows = cursor.fetchmany(MAX_ROWS + 1)
                if len(rows) > MAX_ROWS:
                    raise TaskFailure(DATABASE_ERROR, f"the query returned more than {MAX_ROWS} rows; add a LIMIT")
                return [{column: _cell(value) for column, value in zip(columns, row)} for row in rows]
        except sqlite3.Error as exc:
            if guard.refused:
                raise TaskFailure(DATABASE_DENIED, guard.refused) from None
            if timed_out:
                raise TaskFailure("TaskTimeout", f"the query ran longer than {timeout:g}s") from exc
            raise TaskFailure(DATABASE_ERROR, f"{type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()


class Connections:
    """The database provider: opens the connection a task names, from the URLs the deployment set."""

    def __init__(self, urls: Mapping[str, str], policy: Callable[[], EgressPolicy] = EgressPolicy):
        self.urls = urls  # LOOPLINE_DB_<NAME> -> URL
        # Which servers a postgresql:// connection may reach; read only then (a SQLite task needs no allowlist).
        self.policy = policy

    def __call__(self, connection: str) -> Database:
        return open_database(connection, self.urls, self.policy)


def open_database(connection: str, urls: Mapping[str, str],
                  policy: Callable[[], EgressPolicy] = EgressPolicy) -> Database:
    if not _NAME.match(connection):
        raise TaskFailure(CONFIG_ERROR, f"connection name {connection!r} is not a plain name")
    variable = env_name(connection)
    url = urls.get(variable)
    if not url:
        raise TaskFailure(CONFIG_ERROR, f"no database connection named {connection!r}: set {variable}")
    if url.startswith("sqlite://"):
        target = url[len("sqlite://"):]
        if not target:
            raise TaskFailure(CONFIG_ERROR, f"{variable}: no database path after sqlite://")
        return _factories["sqlite"](connection, target)
    scheme = url.split(":", 1)[0]
    if scheme in POSTGRES_SCHEMES:
        from .postgres import PostgresDatabase  # imports this module's names

        return PostgresDatabase(connection, url, policy())
    factory = _factories.get(scheme)
    if factory is None:
        raise TaskFailure(CONFIG_ERROR, f"{variable}: the '{scheme}' scheme is not supported "
                                        "(sqlite:// and postgresql:// are)")
    return factory(connection, url)


_factories: dict[str, Any] = {"sqlite": SqliteDatabase}


def register_scheme(scheme: str, factory) -> None:
    """A deployment adds a driver for another URL scheme: ``factory(name, url) -> Database``."""
    _factories[scheme] = factory


def run_database(config: dict[str, Any], meta: TaskMeta, opener: Connections, raw_query: Any = None) -> Any:
    if isinstance(raw_query, str) and "${" in raw_query:
        raise TaskFailure(common.INVALID_CONFIG, "the query contains ${...}: SQL must not be built from data; "
                                                 "pass values in 'parameters' and write :name in the query")
    connection = common.text(config, "connection", required=True) or ""
    query = common.text(config, "query", required=True) or ""
    parameters = config.get("parameters")
    if parameters is None:
        bound: dict[str, Any] | list[Any] = {}
    elif isinstance(parameters, dict):
        bound = {str(k): _bindable(v) for k, v in parameters.items()}
    elif isinstance(parameters, list):
        bound = [_bindable(v) for v in parameters]
    else:
        raise TaskFailure(common.INVALID_CONFIG, "'config.parameters' must be an object (or a list for ? placeholders)")
    database = opener(connection)
    return database.execute(query, bound, common.timeout(config, meta, DEFAULT_TIMEOUT))
