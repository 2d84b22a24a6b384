"""The ``database`` task on PostgreSQL: ``postgresql://user:password@host:5432/dbname`` with psycopg (v3).

psycopg is the optional extra ``postgres`` (``pip install 'loopline[postgres]'``);
without it a postgresql:// connection fails the task with ``DatabaseConfigError``
naming the extra.

Same semantics as the SQLite path (database.py): one statement per task, values
only bound (pg_sql.py maps ``:name``/``?`` to psycopg's placeholders), rows as
objects, ``{rowcount}`` for the rest, one transaction committed on success and
rolled back on any error, at most MAX_ROWS rows (streamed, so a huge result is
never held), the task's timeout as ``statement_timeout``.

What keeps a task inside its database:

- the server is reached only through the egress policy (egress.py), like an
  http task: the host is resolved once, every address checked against
  ``LOOPLINE_EGRESS_ALLOW``, and libpq is handed those addresses (``hostaddr``),
  so it does no lookup of its own. A Unix-socket host, a service file or a
  multi-host URL is refused: they would reach a server past that check.
- PostgreSQL's own privileges are the boundary for the SQL: a role that is a
  superuser, or a member of ``pg_read_server_files``, ``pg_write_server_files``
  or ``pg_execute_server_program`` (directly or through another role), can read
  and write the server's files and run programs (``COPY ... PROGRAM``,
  ``pg_read_file``, ``lo_import``), so the task refuses to run on such a
  connection (``DatabaseAccessDenied``). A SQL text filter would be the weaker
  check: functions, DO blocks and views can hide what a statement calls. What the
  server refuses for lack of privilege is ``DatabaseAccessDenied`` too.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import time
import uuid
from typing import Any

from .base import TaskFailure
from .database import CONFIG_ERROR, DATABASE_ERROR, MAX_ROWS
from .egress import EgressPolicy, resolve
from .pg_sql import Converted, convert
from .sqlite_guard import DATABASE_DENIED

EXTRA_HINT = "install loopline with the 'postgres' extra (pip install 'loopline[postgres]'), which brings psycopg"
_PRIVILEGED = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
# Connection keys that would pick the server elsewhere than the host the egress policy checked.
_REFUSED_KEYS = frozenset({"hostaddr", "service", "servicefile"})
_PRIVILEGE_CHECK = (
    "SELECT r.rolname FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER') "
    "AND (r.rolsuper OR r.rolname = ANY(%s)) ORDER BY r.rolname LIMIT 1")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise TaskFailure(CONFIG_ERROR, f"a postgresql:// connection needs psycopg: {EXTRA_HINT}") from None
    return psycopg


def _cell(value: Any) -> Any:
    """A PostgreSQL value as JSON: the types psycopg returns that JSON has no form for become text or numbers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return float(value)  # the engine refuses NaN/infinity in a result (InvalidOutput)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                          ipaddress.IPv6Network, ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return str(value)
    if isinstance(value, list):
        return [_cell(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # ranges, geometric types, ...: their text form


class PostgresDatabase:
    def __init__(self, name: str, url: str, policy: EgressPolicy):
        self.name = name
        self.url = url
        self.policy = policy

    def _parameters(self, psycopg: Any, timeout: float) -> dict[str, Any]:
        """The libpq parameters of the URL, with the host replaced by the addresses the egress policy checked."""
        try:
            params = psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:  # its message may quote the URL, password and all
            raise TaskFailure(CONFIG_ERROR, f"the URL of connection '{self.name}' is not a valid "
                                            "postgresql:// URL") from None
        refused = sorted(_REFUSED_KEYS & params.keys())
        if refused:
            raise TaskFailure(CONFIG_ERROR, f"connection '{self.name}': {', '.join(refused)} may not be set in the URL")
        host = str(params.get("host") or "")
        if not host or "," in host or host.startswith("/") or host.startswith("@"):
            raise TaskFailure(CONFIG_ERROR, f"connection '{self.name}' must name one TCP host "
                                            "(a Unix socket or a list of hosts is not allowed)")
        port_text = str(params.get("port") or "5432")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TaskFailure(CONFIG_ERROR, f"connection '{self.name}': {port_text!r} is not a port")
        try:
            pairs = resolve(host, int(port_text), self.policy)  # EgressDenied when not allowed
        except OSError as exc:
            raise TaskFailure(DATABASE_ERROR, f"cannot resolve the host of connection '{self.name}': {exc}") from exc
        addresses = list(dict.fromkeys(str(sockaddr[0]) for _, sockaddr in pairs))
        params.update(host=",".join([host] * len(addresses)), hostaddr=",".join(addresses),
                      port=",".join([port_text] * len(addresses)),
                      connect_timeout=str(max(2, min(int(timeout), 10))), client_encoding="UTF8")
        return params

    def execute(self, query: str, parameters: dict[str, Any] | list[Any], timeout: float) -> Any:
        psycopg = _psycopg()
        converted = convert(query, positional=isinstance(parameters, list))
        if isinstance(parameters, dict):
            missing = sorted(set(converted.names) - parameters.keys())
            if missing:
                raise TaskFailure(DATABASE_ERROR, f"no value for the parameter :{missing[0]} (in 'parameters')")
        elif converted.positional != len(parameters):
            raise TaskFailure(DATABASE_ERROR, f"the query has {converted.positional} ? placeholders but "
                                              f"{len(parameters)} parameters were given")
        params = self._parameters(psycopg, timeout)
        deadline = time.monotonic() + timeout
        try:  # connect_timeout bounds the connect, the server's statement_timeout the statement
            connection = psycopg.connect(**params)
        except psycopg.Error as exc:
            raise TaskFailure(DATABASE_ERROR, f"cannot connect to database '{self.name}': {exc}") from exc
        try:
            with connection:  # commits on success, rolls back on error, closes
                return self._run(connection, converted, parameters, deadline)
        except psycopg.errors.QueryCanceled as exc:
            raise TaskFailure("TaskTimeout", f"the query ran longer than {timeout:g}s") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise TaskFailure(DATABASE_DENIED, f"the database refused it: {exc}") from exc
        except psycopg.Error as exc:
            raise TaskFailure(DATABASE_ERROR, f"{type(exc).__name__}: {exc}") from exc
        finally:
            connection.close()

    def _run(self, connection: Any, converted: Converted, parameters: dict[str, Any] | list[Any],
             deadline: float) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(_PRIVILEGE_CHECK, [list(_PRIVILEGED)])
            row = cursor.fetchone()
            if row is not None:
                raise TaskFailure(DATABASE_DENIED, f"connection '{self.name}' logs in as a role that is or can "
                                                   f"become {row[0]}, which reaches the server's files and "
                                                   "programs; connect as a role without it")
            remaining = max(1, int((deadline - time.monotonic()) * 1000))
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(remaining)])
            # Always bound (even an empty {} or []), so psycopg uses the extended protocol: one statement only.
            if not _returns_rows(connection, converted, parameters):
                cursor.execute(converted.query, parameters)
                return {"rowcount": cursor.rowcount}
            rows: list[Any] = []
            for record in cursor.stream(converted.query, parameters):  # row by row: a huge result is never held
                rows.append(record)
                if len(rows) > MAX_ROWS:
                    raise TaskFailure(DATABASE_ERROR, f"the query returned more than {MAX_ROWS} rows; add a LIMIT")
            columns = [column.name for column in cursor.description or ()]
            return [{column: _cell(value) for column, value in zip(columns, record)} for record in rows]


def _returns_rows(connection: Any, converted: Converted, parameters: dict[str, Any] | list[Any]) -> bool:
    """Whether the statement gives rows (SELECT, RETURNING, ...), asked of the server (prepare + describe)
    without running it: rows are then streamed, and anything else is run for its rowcount."""
    from psycopg import pq
    from psycopg.adapt import PyFormat, Transformer

    values = converted.values(parameters)
    transformer = Transformer(connection)
    transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))  # the types psycopg will send them as
    pgconn = connection.pgconn
    prepared = pgconn.prepare(b"", converted.numbered.encode("utf-8"), list(transformer.types or ()))
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise TaskFailure(DATABASE_ERROR, (prepared.error_message or b"").decode("utf-8", "replace").strip())
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:
        raise TaskFailure(DATABASE_ERROR, (described.error_message or b"").decode("utf-8", "replace").strip())
    return described.nfields > 0
