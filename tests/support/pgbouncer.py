"""A real PgBouncer (Debian ``pgbouncer``, 1.18) in front of the throwaway PostgreSQL of
``support.postgres``, on a free loopback port, in ``pool_mode = transaction`` by default: each
transaction of a client may run on another server connection, so session state (prepared
statements, ``LISTEN``) does not follow the client, as behind a production PgBouncer.

Clients authenticate to PgBouncer with a password (``scram-sha-256`` against its own
``userlist.txt``); PgBouncer logs in to PostgreSQL as the same user (the cluster trusts
loopback). PgBouncer refuses to run as root, so as root it runs as the cluster's unprivileged
user (``postgres`` or ``nobody``), like PostgreSQL itself. Exactly what runs::

    pgbouncer $TMP/botwire-pgb-XXXX/pgbouncer.ini      # foreground; SIGTERM on exit, then rm -rf

Example::

    with running_pgbouncer(postgres_dsn) as bouncer:
        url = bouncer.url(postgres_dsn)   # the same database, user and a password, via PgBouncer
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support.postgres import _temp_root, _unprivileged_user
from support.proc import Daemon, serving, spawn
from support.server import free_port

__all__ = ["PASSWORD", "PGBOUNCER", "PgBouncer", "running_pgbouncer"]

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
#: The password clients give PgBouncer (PostgreSQL itself trusts loopback).
PASSWORD = "bouncer-pw-5f2"


class PgBouncer(Daemon):
    """A running PgBouncer: ``port``, ``url(dsn)``, ``admin(command)``, ``log()``, ``stop()``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        super().__init__(proc, log_path)
        self.port = port

    def url(self, dsn: str) -> str:
        """``dsn`` (a database of the throwaway PostgreSQL) rewritten to go through PgBouncer,
        as a ``postgresql://`` URL with the password."""
        params = conninfo_to_dict(dsn)
        user, dbname = params.get("user", "postgres"), params["dbname"]
        return f"postgresql://{user}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """Run ``command`` (``SHOW POOLS``...) on PgBouncer's admin console."""
        with psycopg.connect(
            make_conninfo(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                password=PASSWORD,
                dbname="pgbouncer",
            ),
            autocommit=True,
            prepare_threshold=None,
        ) as conn:
            cur = conn.execute(command)
            return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def running_pgbouncer(
    postgres_dsn: str, *, pool_mode: str = "transaction", pool_size: int = 20
) -> Iterator[PgBouncer]:
    """PgBouncer in front of the PostgreSQL server of ``postgres_dsn`` (every database on it);
    always stopped and its directory removed on exit."""
    if not os.access(PGBOUNCER, os.X_OK):  # a failure, never a skip
        raise RuntimeError(
            f"pgbouncer is needed by the PgBouncer tests but {PGBOUNCER} is missing: "
            "apt-get install -y pgbouncer (.ci/run installs it)."
        )
    target = conninfo_to_dict(postgres_dsn)
    user = _unprivileged_user()
    base = tempfile.mkdtemp(prefix="botwire-pgb-", dir=_temp_root(user))
    try:
        if user is not None:
            os.chown(base, user.pw_uid, user.pw_gid)
        port = free_port()
        log_path = Path(base) / "pgbouncer.log"
        users = Path(base) / "userlist.txt"
        users.write_text(f'"{target.get("user", "postgres")}" "{PASSWORD}"\n')
        ini = Path(base) / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={target.get('host', '127.0.0.1')} port={target.get('port', 5432)}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {users}\n"
            f"admin_users = {target.get('user', 'postgres')}\n"
            f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 500\nserver_reset_query =\n"
            f"logfile = {log_path}\npidfile = {Path(base) / 'pgbouncer.pid'}\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )
        for path in (users, ini):
            if user is not None:
                os.chown(path, user.pw_uid, user.pw_gid)
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        proc = spawn([PGBOUNCER, str(ini)], cwd=base, **kwargs)
        with serving(PgBouncer(proc, port, log_path), [port], "pgbouncer") as bouncer:
            yield bouncer
    finally:
        shutil.rmtree(base, ignore_errors=True)
