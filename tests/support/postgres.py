"""A real, throwaway PostgreSQL server for the test suites.

``BOTWIRE_TEST_POSTGRES_URL`` (a superuser or ``CREATEDB`` role) is used when set; otherwise a
private cluster is created with ``initdb`` (found on ``PATH`` or in
``/usr/lib/postgresql/*/bin``; without them, the PostgreSQL build inside the ``pgserver`` wheel,
a dev dependency; ``BOTWIRE_TEST_POSTGRES=system|pypi`` forces one) in a temporary directory,
listening on a free loopback port with its unix socket inside that directory, and removed at the
end. ``initdb`` refuses to run as root, so as root the cluster runs as an unprivileged user:
``postgres`` if it exists, else ``nobody`` (``subprocess``'s ``user=``/``group=``, no
``sudo``/``su`` needed); a wheel build it cannot reach (a venv under a root-only home) is copied
for it first. Exactly what runs, as root::

    chown postgres: $TMP/botwire-pg-XXXX
    initdb -D $TMP/botwire-pg-XXXX/data -E UTF8 --locale=C -A trust -U postgres --no-sync
    pg_ctl -D .../data -l .../server.log -w -t 60 -o "-c listen_addresses=127.0.0.1 -p PORT
           -k $TMP/botwire-pg-XXXX -c fsync=off -c synchronous_commit=off
           -c full_page_writes=off -c max_connections=300" start
    ... tests ...
    pg_ctl -D .../data -m fast -w stop && rm -rf $TMP/botwire-pg-XXXX

When PostgreSQL cannot be started the fixture **fails** (it never skips): CI installs the
``postgresql`` package (faster to start) and must not pass without running the PostgreSQL suite;
a machine with only Python and uv runs it on the ``pgserver`` wheel's binaries.

Example (a ``conftest.py``)::

    from support.postgres import postgres_url

    postgres_url = postgres_url()            # session fixture: DSN of a fresh database

    def test_something(postgres_url: str) -> None:
        store = PostgresStore(postgres_url)
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

T = TypeVar("T")

__all__ = [
    "PostgresServer",
    "PostgresUnavailable",
    "find_postgres_bin",
    "new_database",
    "postgres_url",
    "role_without_notify",
    "running_postgres",
    "shared_server",
]

ENV_URL = "BOTWIRE_TEST_POSTGRES_URL"
#: ``system``, ``pypi`` or unset: where initdb/pg_ctl come from (see find_postgres_bin).
ENV_SOURCE = "BOTWIRE_TEST_POSTGRES"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started; the message says what to install or set."""


def _pypi_postgres_bin() -> str | None:
    """The ``bin`` directory of the PostgreSQL build inside the ``pgserver`` wheel (a dev
    dependency), found without importing it; ``None`` when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bindir = os.path.join(location, "pginstall", "bin")
        if all(os.access(os.path.join(bindir, t), os.X_OK) for t in ("initdb", "pg_ctl")):
            return bindir
    return None


def _system_postgres_bin() -> str | None:
    """``initdb``/``pg_ctl`` on ``PATH``, else the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("initdb")
    if found:
        real = os.path.dirname(os.path.realpath(found))
        if os.path.exists(os.path.join(real, "pg_ctl")):
            return real
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")],
    )
    for initdb in reversed(candidates):
        if os.path.exists(os.path.join(os.path.dirname(initdb), "pg_ctl")):
            return os.path.dirname(initdb)
    return None


def find_postgres_bin() -> str:
    """The directory holding ``initdb`` and ``pg_ctl``.

    ``BOTWIRE_TEST_POSTGRES`` chooses: ``system`` (``PATH``, then the newest
    ``/usr/lib/postgresql/*/bin``), ``pypi`` (the binaries of the ``pgserver`` wheel), or unset:
    the system's when installed, else the wheel's, so ``uv run pytest`` passes on a machine
    without a system PostgreSQL.
    """
    choice = os.environ.get(ENV_SOURCE, "").strip().lower()
    if choice not in ("", "system", "pypi"):
        raise PostgresUnavailable(
            f"{ENV_SOURCE}={choice!r}: use 'system' (initdb from PATH or /usr/lib/postgresql), "
            "'pypi' (the pgserver wheel's binaries) or leave it unset (system, else pypi)."
        )
    found = None if choice == "pypi" else _system_postgres_bin()
    if found is None and choice != "system":
        found = _pypi_postgres_bin()
    if found is not None:
        return found
    raise PostgresUnavailable(
        "PostgreSQL is needed for the PostgreSQL tests but initdb/pg_ctl were not found"
        + ("" if choice == "pypi" else " on PATH or in /usr/lib/postgresql/*/bin")
        + (
            ""
            if choice == "system"
            else " nor in the pgserver package (a dev dependency: 'uv sync' installs it)"
        )
        + ". Install it (apt-get install -y postgresql, or uv sync) or set "
        f"{ENV_URL}=postgresql://user@host:port/db (a role that may CREATE DATABASE)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs the cluster: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither 'postgres' nor 'nobody' exists")


def _temp_root(user: pwd.struct_passwd | None) -> str:
    """A temporary directory the cluster's user can reach (``$TMPDIR`` may be root-only)."""
    root = tempfile.gettempdir()
    if user is None:
        return root
    path = os.path.abspath(root)
    while True:
        if not os.stat(path).st_mode & 0o001:  # not traversable by others
            return "/tmp"
        parent = os.path.dirname(path)
        if parent == path:
            return root
        path = parent


def _traversable(path: str) -> bool:
    """Whether every directory from ``/`` down to ``path`` lets other users through (o+x)."""
    path = os.path.abspath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _private_copy(bindir: str, base: str) -> str:
    """Copy the build ``.../pgserver/pginstall`` (and the wheel's ``pgserver.libs``, which its
    binaries find through ``$ORIGIN/../../../pgserver.libs``) under ``base``; the new bin dir."""
    install = os.path.dirname(bindir)
    package = os.path.dirname(install)
    site = os.path.dirname(package)
    dest = os.path.join(base, "pg", os.path.basename(package))
    shutil.copytree(install, os.path.join(dest, os.path.basename(install)), symlinks=True)
    libs = os.path.join(site, os.path.basename(package) + ".libs")
    if os.path.isdir(libs):
        shutil.copytree(libs, os.path.join(base, "pg", os.path.basename(libs)), symlinks=True)
    return os.path.join(dest, os.path.basename(install), "bin")


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class PostgresServer:
    """A PostgreSQL server the tests may create databases on.

    ``admin_url`` connects with rights to create databases; :meth:`new_database` returns the DSN of
    a fresh empty UTF8 database.
    """

    def __init__(self, admin_url: str, *, owned_dir: str | None = None) -> None:
        self.admin_url = admin_url
        self._dir = owned_dir
        self._bin: str | None = None
        self._user: pwd.struct_passwd | None = None
        self._created: list[str] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._options = ""

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def start(cls) -> PostgresServer:
        """Use ``BOTWIRE_TEST_POSTGRES_URL`` or start a private cluster (see module docstring)."""
        url = os.environ.get(ENV_URL)
        if url:
            server = cls(url)
            server._check()
            return server
        return cls.start_private()

    @classmethod
    def start_private(cls, *, durable: bool = False) -> PostgresServer:
        """A private throwaway cluster, whatever ``BOTWIRE_TEST_POSTGRES_URL`` says.

        ``durable=True`` keeps ``synchronous_commit`` on, as in production: a COMMIT is answered
        only once its WAL reached the OS, so killing the server's processes loses no committed
        transaction (``fsync`` stays off: only an OS crash could lose data then).
        """
        bindir = find_postgres_bin()
        user = _unprivileged_user()
        base = tempfile.mkdtemp(prefix="botwire-pg-", dir=_temp_root(user))
        server = cls("", owned_dir=base)
        server._bin, server._user = bindir, user
        try:
            os.chmod(base, 0o700)
            if user is not None:
                os.chown(base, user.pw_uid, user.pw_gid)
                if not _traversable(bindir):
                    # e.g. the wheel's binaries in a venv under a root-only home: the cluster's
                    # user could not run them; a private copy of the relocatable build can.
                    server._bin = _private_copy(bindir, base)
            data = os.path.join(base, "data")
            server._pg(
                "initdb",
                "-D",
                data,
                "-E",
                "UTF8",
                "--locale=C",
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            )
            port = _free_port()
            server._options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
                f" -c synchronous_commit={'on' if durable else 'off'}"
                " -c full_page_writes=off -c max_connections=300"
            )
            server._pg_start()
            server.admin_url = make_conninfo(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres"
            )
            server._check()
        except BaseException:
            server.stop()
            raise
        return server

    def _pg_start(self) -> None:
        assert self._dir is not None
        data = os.path.join(self._dir, "data")
        log = os.path.join(self._dir, "server.log")
        self._pg("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", self._options, "start")

    # -- crashes (private clusters only) -----------------------------------------------------

    def kill9(self) -> int:
        """``kill -9`` the postmaster and every process it started, as a crash would; returns
        how many processes were killed. :meth:`restart` brings the cluster back (with crash
        recovery)."""
        if self._dir is None:
            raise PostgresUnavailable("only a private cluster can be killed")
        with open(os.path.join(self._dir, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        os.kill(postmaster, signal.SIGSTOP)  # it forks no new backend while we list them
        victims = [postmaster, *_children(postmaster)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in victims):
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL processes {victims} outlived kill -9")
            time.sleep(0.01)
        # A killed postmaster may stay a zombie (in a container nobody may reap it), and a
        # zombie's PID still "exists": a new postmaster would refuse its stale lock files.
        stale = [
            os.path.join(self._dir, "data", "postmaster.pid"),
            *glob.glob(os.path.join(self._dir, ".s.PGSQL.*")),
        ]
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        return len(victims)

    def restart(self) -> None:
        """Start a killed private cluster again on the same data, port and options."""
        self._pg_start()
        self._check()

    def _pg(self, tool: str, *args: str) -> None:
        assert self._bin is not None
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        done = subprocess.run(
            [os.path.join(self._bin, tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self._dir or "/",
            env=env,
            check=False,
            **kwargs,
        )
        if done.returncode != 0:
            log = ""
            if self._dir and os.path.exists(os.path.join(self._dir, "server.log")):
                with open(os.path.join(self._dir, "server.log")) as f:
                    log = f.read()[-3000:]
            raise PostgresUnavailable(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n"
                f"{done.stderr}\n{log}"
            )

    def _check(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"cannot connect to test PostgreSQL: {exc}") from exc

    def stop(self) -> None:
        """Drop created databases (external server) or stop and delete the private cluster."""
        if self._dir is None:
            for name in self._created:
                with (
                    contextlib.suppress(psycopg.Error),
                    psycopg.connect(self.admin_url, autocommit=True) as conn,
                ):
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
            self._created.clear()
            return
        data = os.path.join(self._dir, "data")
        try:
            if os.path.exists(os.path.join(data, "postmaster.pid")):
                self._pg("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- databases ---------------------------------------------------------------------------

    def new_database(self, prefix: str = "botwire_test") -> str:
        """Create an empty UTF8 database and return its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'"
                    " LC_COLLATE 'C' LC_CTYPE 'C'"
                ).format(sql.Identifier(name))
            )
        with self._lock:
            self._created.append(name)
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = name
        return make_conninfo(**params)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A server for the duration of the block; stopped and removed afterwards.

    Example::

        with running_postgres() as pg:
            store = PostgresStore(pg.new_database())
    """
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


# One server per test session, shared by every fixture made by postgres_url(); it is stopped at
# the end of the pytest session (config cleanup), or at interpreter exit outside pytest.
_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server(config: pytest.Config | None = None) -> PostgresServer:
    """The session's shared server, started on first use and stopped at the end of the session."""
    global _shared
    with _shared_lock:
        if _shared is None:
            server = PostgresServer.start()
            _shared = server
            if config is not None:
                config.add_cleanup(_stop_shared)
            else:
                atexit.register(_stop_shared)
        return _shared


def _stop_shared() -> None:
    global _shared
    with _shared_lock:
        server, _shared = _shared, None
    if server is not None:
        server.stop()


def new_database(prefix: str = "botwire_test") -> str:
    """A fresh database on the shared server (started if need be)."""
    return shared_server().new_database(prefix)


def postgres_url(scope: str = "session", prefix: str = "botwire_test") -> Callable[..., Any]:
    """Make a pytest fixture that yields the DSN of a fresh database on the shared server.

    Example (``conftest.py``)::

        from support.postgres import postgres_url
        postgres_url = postgres_url()                  # one database per session
        pg_fresh_url = postgres_url(scope="function")  # one database per test

    Fails (never skips) when PostgreSQL cannot be started.
    """

    @pytest.fixture(scope=scope)  # type: ignore[call-overload, untyped-decorator]
    def fixture(request: pytest.FixtureRequest) -> str:
        try:
            server = shared_server(request.config)
        except PostgresUnavailable as exc:
            pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
        return server.new_database(prefix)

    return fixture  # type: ignore[no-any-return]


def terminate_backends(url: str) -> int:
    """Kill every connection to ``url``'s database (on the shared server), as a restart or a
    failover would; returns how many were killed."""
    dbname = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(shared_server().admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return len(rows)


@contextlib.contextmanager
def role_without_notify(url: str) -> Iterator[str]:
    """A URL of ``url``'s database as a new login role that may read and write botwire's
    tables (created first by ``url``'s owner) but not run ``pg_notify``: ``EXECUTE`` on it is
    revoked from ``PUBLIC`` in that database (function privileges are per database, so use
    a fresh one). Everything is put back, and the role dropped, at the end."""
    from botwire_server.storage.postgres import PostgresStore

    PostgresStore(url).close()  # the schema, created by the owner
    role = f"bw_mute_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        database = admin.info.dbname
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        admin.execute("REVOKE EXECUTE ON FUNCTION pg_notify(text, text) FROM PUBLIC")
    try:
        yield make_conninfo(url, user=role)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("GRANT EXECUTE ON FUNCTION pg_notify(text, text) TO PUBLIC")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def with_async_reader(store: Any, body: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``body(reader)`` in a fresh event loop, ``store.async_reader()`` opened and closed
    in it (the server's reads, and writes when the store has ``async_writes``)."""

    async def main() -> T:
        reader = store.async_reader()
        await reader.open()
        try:
            return await body(reader)
        finally:
            await reader.close()

    return asyncio.run(main())


@contextlib.asynccontextmanager
async def async_writer(url: str, **kw: Any) -> AsyncIterator[tuple[Any, Any]]:
    """A ``PostgresStore(url, async_writes=True, **kw)`` and its opened ``async_reader()``
    (the server's event-loop writes), closed after."""
    from botwire_server.storage.postgres import PostgresStore

    store = PostgresStore(url, async_writes=True, **kw)
    reader = store.async_reader()
    await reader.open()
    try:
        yield reader, store
    finally:
        await reader.close()
        store.close()


def record_locks(monkeypatch: pytest.MonkeyPatch, namespace: str) -> list[bool]:
    """Each namespace lock the engine takes on ``namespace`` from now on: ``held`` (the
    transaction already held it, so the row is only read) or not (upserted)."""
    from botwire.store._sql import Engine

    locks: list[bool] = []
    plan_lock = Engine.plan_lock

    def spy(self: Engine, ns: str, now: float, held: bool = False) -> Any:
        if ns == namespace:
            locks.append(held)
        return plan_lock(self, ns, now, held)

    monkeypatch.setattr(Engine, "plan_lock", spy)
    return locks


def arrive_in_waves(
    monkeypatch: pytest.MonkeyPatch, wait: Callable[[], None], join: Callable[[], None]
) -> None:
    """Start writes while the event loop's write transactions are in flight: ``wait()`` as the
    first ``COMMIT`` leaves (what it starts waits for that transaction and forms the next
    group), then ``join()`` as the next send leaves (that group's first round trip: what it
    starts arrives while the group's lock is in flight, and joins the group's transaction)."""
    from botwire_server.storage._pg_write import AsyncPgTx

    send = AsyncPgTx.send
    hooks = [wait, join]

    async def spy(self: AsyncPgTx, **options: Any) -> Any:
        if hooks and self._queue and (len(hooks) == 1 or self.queued_texts()[-1] == b"COMMIT"):
            hooks.pop(0)()
        return await send(self, **options)

    monkeypatch.setattr(AsyncPgTx, "send", spy)


async def in_three_waves(
    monkeypatch: pytest.MonkeyPatch,
    lone: Awaitable[T],
    group: list[Awaitable[T]],
    late: list[Awaitable[T]],
) -> list[T | BaseException]:
    """``lone`` alone; ``group`` started as its ``COMMIT`` leaves (they form the next group);
    ``late`` started as that group's lock leaves (they join it): every outcome, in that order.
    A call never answered (lost) fails it in 30 s."""
    tasks: list[asyncio.Future[T]] = []

    def start(calls: list[Awaitable[T]]) -> None:
        tasks.extend(asyncio.ensure_future(c) for c in calls)

    with monkeypatch.context() as m:
        arrive_in_waves(m, lambda: start(group), lambda: start(late))
        start([lone])
        for _ in range(3):  # each wave starts while the one before it runs
            got = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert len(got) == 1 + len(group) + len(late), got
    return got


def rows_read(plan: dict[str, Any], relation: str) -> int:
    """Rows an executed plan's scans of table ``relation`` took from it, returned or filtered
    (``EXPLAIN (ANALYZE, FORMAT JSON)``'s ``Plan``)."""
    read = 0
    if plan.get("Relation Name") == relation:
        read += plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
        read += plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return read + sum(rows_read(p, relation) for p in plan.get("Plans", []))
