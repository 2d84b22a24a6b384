"""A real PostgreSQL server for the tests, from Debian's ``postgresql`` package (``make system-deps``).

``postgres_server`` (session-scoped) runs ``initdb`` and ``pg_ctl start`` in a
temporary directory: TCP on 127.0.0.1 on a free port (password logins,
scram-sha-256) and a Unix socket in that directory (the administrator's way in,
trusted). PostgreSQL refuses to run as root, so when the tests are root the
server runs as ``nobody`` (``runuser``). Tests that use it skip, with the reason,
when PostgreSQL or psycopg is not installed.

``pg_database`` gives each test a fresh database owned by ``loopline_task``, a
plain role (no superuser, none of the server-file roles): the role a deployment
should give a task connection. Its URL is what ``LOOPLINE_DB_<NAME>`` holds.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass

import pytest

TASK_ROLE = "loopline_task"
TASK_PASSWORD = "task-pw-1"
ADMIN = "pgadmin"
_counter = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    port: int
    socket_dir: str

    def admin(self, dbname: str = "postgres"):
        import psycopg
        return psycopg.connect(host=self.socket_dir, port=self.port, user=ADMIN, dbname=dbname, autocommit=True)

    def url(self, dbname: str, user: str = TASK_ROLE, password: str = TASK_PASSWORD, host: str = "127.0.0.1") -> str:
        return f"postgresql://{user}:{password}@{host}:{self.port}/{dbname}"


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package: make system-deps)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (the 'postgres' extra)")
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("runuser"):
        pytest.skip("the tests run as root, and without runuser the PostgreSQL server (which refuses root) "
                    "cannot be started as nobody")
    prefix = ["runuser", "-u", "nobody", "--"] if as_root else []
    top = tempfile.mkdtemp(prefix="loopline-pg-")
    os.chmod(top, 0o755)
    if as_root:
        shutil.chown(top, "nobody", "nogroup")
    data, port = os.path.join(top, "data"), _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(prefix + list(args), capture_output=True, text=True, timeout=120, cwd=top)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    run(f"{bin_dir}/initdb", "-D", data, "-U", ADMIN, "--auth-local=trust", "--auth-host=scram-sha-256",
        "--no-sync", "-E", "UTF8", "--locale=C")
    options = f"-k {top} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(top, "log"), "-o", options, "-w", "-t", "60", "start")
    server = PostgresServer(port=port, socket_dir=top)
    try:
        with server.admin() as admin:
            admin.execute(f"CREATE ROLE {TASK_ROLE} LOGIN PASSWORD '{TASK_PASSWORD}'")
        yield server
    finally:
        subprocess.run(prefix + [f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, cwd=top)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def pg_database(postgres_server):
    """A fresh database owned by the task role: (server, its name)."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with postgres_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER {TASK_ROLE}")
    yield postgres_server, name
    with postgres_server.admin() as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def task_connection(server: PostgresServer, dbname: str):
    """A psycopg connection as the task role, to set tables up and look at them."""
    import psycopg
    return psycopg.connect(host="127.0.0.1", port=server.port, user=TASK_ROLE, password=TASK_PASSWORD,
                           dbname=dbname, autocommit=True)


__all__ = ["PostgresServer", "postgres_server", "pg_database", "task_connection", "TASK_ROLE"]
