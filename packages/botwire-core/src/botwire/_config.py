"""Where memory lives: settings from arguments and environment, and the shared backends.

Every ``Memory`` with the same settings shares one backend (one SQLite connection, or one
pool of keep-alive HTTP connections), so a warm serverless container reuses it across
invocations.
"""

from __future__ import annotations

import os
import sys
import time
from _thread import allocate_lock  # not threading: it imports collections, functools...

from ._errors import InvalidArgument
from ._record import record

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

    from .store import AsyncStore, Store

__all__ = [
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "Settings",
    "acquire_async_store",
    "acquire_store",
    "is_conninfo",
    "is_postgres",
    "release",
    "resolve",
    "shown_url",
    "sqlite_file",
]

DEFAULT_URL = "sqlite:///~/.botwire/memory.db"
_SERVERLESS_VARS = ("AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "VERCEL")


class BotWireWarning(UserWarning):
    """Something works, but probably not as you meant it to (e.g. local files on Lambda)."""


@record
class Settings:
    """Resolved configuration. ``url`` is ``http(s)://...`` or ``sqlite:///<absolute path>``."""

    url: str
    token: str | None
    timeout: float
    retries: int
    keepalive_expiry: float = 30.0  # seconds an idle pooled HTTP connection may be reused

    @property
    def is_http(self) -> bool:
        return self.url.startswith(("http://", "https://"))

    @property
    def sqlite_path(self) -> str:
        return self.url[len("sqlite:///") :]


#: The longest per-attempt timeout: a socket timeout must fit the platform's time_t in
#: nanoseconds (1e10 s overflowed it), and an attempt that may hang a day is surely a mistake.
MAX_TIMEOUT = 86400.0
#: The most retries: with backoff capped at 2 s that is over half an hour of waiting already.
MAX_RETRIES = 1000


def _number(name: str, raw: str | None, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidArgument(
            f"botwire: {name}={raw!r} is not a number; set it to seconds or a count, e.g. 10."
        ) from None


def _bounded(
    value: Any, arg: str, env: str, explicit: bool, rule: str, ok: Any, example: str
) -> float:
    """``value`` as a float when it is a real number for which ``ok(number)`` holds, else
    InvalidArgument naming where it came from (the argument or the variable), the rule and the
    fix (``inf``, ``nan`` and ``1e10`` used to escape as a bare OverflowError)."""
    number = None
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond a float's range
            number = None
    if number is not None and number - number == 0 and ok(number):  # finite: inf-inf is nan
        return number
    where = f"{arg}={value!r}" if explicit else f"{env}={os.environ.get(env, value)!r}"
    fix = f"pass {arg}={example}" if explicit else f"set {env}={example} (or pass {arg}=)"
    raise InvalidArgument(f"botwire: {where} is out of range: {rule}; {fix}.")


def resolve(
    url: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    keepalive_expiry: float | None = None,
) -> Settings:
    """Explicit arguments first, then ``BOTWIRE_*`` environment variables, then defaults."""
    env = os.environ
    raw_url = url or env.get("BOTWIRE_URL") or DEFAULT_URL
    token = token if token is not None else (env.get("BOTWIRE_TOKEN") or None)
    t = _bounded(
        timeout if timeout is not None else _env_number("BOTWIRE_TIMEOUT", 10.0),
        "timeout",
        "BOTWIRE_TIMEOUT",
        timeout is not None,
        f"the per-attempt timeout is seconds > 0 and at most {MAX_TIMEOUT:.0f} (a day)",
        lambda n: 0 < n <= MAX_TIMEOUT,
        "10",
    )
    r = _bounded(
        # 7: backends/_retry.py DEFAULT_RETRIES (3.55-7.1 s of backoff rides out a 2-3 s outage)
        retries if retries is not None else _env_number("BOTWIRE_RETRIES", 7),
        "retries",
        "BOTWIRE_RETRIES",
        retries is not None,
        f"retries is a whole number from 0 to {MAX_RETRIES}",
        lambda n: n == int(n) and 0 <= n <= MAX_RETRIES,
        "7",
    )
    k = (
        keepalive_expiry
        if keepalive_expiry is not None
        else _env_number("BOTWIRE_KEEPALIVE_EXPIRY", 30.0)
    )
    if not k >= 0:
        raise InvalidArgument(
            f"botwire: keepalive_expiry={k!r} (or BOTWIRE_KEEPALIVE_EXPIRY); use seconds >= 0 "
            "(0 never reuses an idle connection), below your load balancer's or NAT's idle timeout."
        )
    source = "url" if url else "BOTWIRE_URL" if env.get("BOTWIRE_URL") else "url"
    return Settings(_normalize_url(raw_url, source), token, t, int(r), float(k))


def _env_number(name: str, default: float) -> float:
    return _number(name, os.environ.get(name), default)


def _normalize_url(raw: str, source: str = "url") -> str:
    """``http(s)://...`` without a trailing slash, or ``sqlite:///<absolute path>``.

    The one rule for files (the client, ``botwire --url`` and ``botwire-server --database``):
    ``sqlite:///rel.db`` and a plain ``rel.db`` are relative to the working directory,
    ``sqlite:////abs.db`` and ``/abs.db`` are absolute, ``~`` is the home directory.
    """
    raw = raw.strip()  # a newline from $(cat url.txt) is never meant
    scheme, sep, rest = raw.partition("://")
    if sep and scheme.lower() in ("http", "https"):  # schemes are case-insensitive (RFC 3986)
        if not rest.strip("/"):
            raise InvalidArgument(
                f"botwire: {source} {shown_url(raw)!r} names no host; use e.g. "
                "http://127.0.0.1:8765."
            )
        netloc = _netloc(rest)
        if "@" in netloc:
            # The client never sent them (only BOTWIRE_TOKEN is): refuse rather than drop them.
            bare = f"{scheme.lower()}://{netloc.rpartition('@')[2]}{rest[len(netloc) :]}"
            raise InvalidArgument(
                f"botwire: {source} {shown_url(raw)!r} carries credentials (user:password@ "
                "before the host), which botwire does not send. Give the server's token as "
                f"BOTWIRE_TOKEN (or token=...) and the URL without them: {bare!r}."
            )
        return f"{scheme.lower()}://{rest}".rstrip("/")
    if raw == DEFAULT_URL:
        return "sqlite:///" + _default_path()
    path = sqlite_file(raw, source)
    return "sqlite:///" + path


def _netloc(rest: str) -> str:
    """The authority of a URL after its ``scheme://``: up to the first ``/``, ``?`` or ``#``."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return rest[:end]


def shown_url(url: str) -> str:
    """``url`` as messages, ``repr`` and ``BOTWIRE_DEBUG`` may show it: a password in its
    userinfo becomes ``***`` (``http://bob:***@host``), and a userinfo without one, which is
    often a token, too (``http://***@host``). A bare ``user:pw@host:port`` (a proxy written
    without its scheme) is masked alike. Every place that shows a URL goes through here."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc = _netloc(rest)
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}{sep}{masked}@{hostport}{rest[len(netloc) :]}"


def sqlite_file(raw: str, source: str = "url") -> str:
    """The SQLite file ``raw`` names (absolute; or ``:memory:``), by the rule above.

    Raises :class:`InvalidArgument` with a suggestion for what is surely no file name: a server
    address without its scheme (``127.0.0.1:8765``), a mistyped scheme (``http:/host``), and
    ``sqlite:///tmp/x.db`` when ``./tmp`` does not exist but ``/tmp`` does (it means
    ``./tmp/x.db``, rarely what was meant).
    """
    raw = raw.strip()
    lowered = raw.lower()
    scheme, sep, rest = raw.partition("://")
    if sep and lowered.startswith("sqlite://"):
        path = raw[len("sqlite:///") :] if lowered.startswith("sqlite:///") else rest
        if path == ":memory:":
            return path
        _check_three_slashes(raw, path, source)
        return os.path.abspath(os.path.expanduser(path))
    suggestion = _suggest_http(raw)
    pg_url = bool(sep) and scheme.lower() in ("postgresql", "postgres")
    if pg_url or is_conninfo(raw):
        what = f"a {scheme}:// URL" if pg_url else "a PostgreSQL connection string (key=value)"
        raise InvalidArgument(  # never echo it: it may hold a password
            f"botwire: {source} is {what}: that is botwire-server's database "
            "(botwire-server --database ...); clients talk to the server: http(s)://host:port. "
            "To use PostgreSQL without a server, pass its store: Memory(namespace, "
            "store=PostgresStore(url)), from botwire_server.storage.postgres "
            "(pip install botwire-server)."
        )
    if sep:
        hint = (
            f"did you mean {shown_url(suggestion)}?"
            if suggestion
            else "use http(s)://host:port for a server, or sqlite:///file.db for a local file."
        )
        raise InvalidArgument(f"botwire: {source} {shown_url(raw)!r} has an unknown scheme; {hint}")
    if suggestion:
        raise InvalidArgument(
            f"botwire: {source} {shown_url(raw)!r} has no scheme, so it would be a SQLite file "
            f"of that name: did you mean {shown_url(suggestion)}? (For such a file, write "
            f"sqlite:///./{shown_url(raw)}.)"
        )
    if raw == ":memory:":
        return raw
    return os.path.abspath(os.path.expanduser(raw))


#: libpq's connection keywords, one of which every connection string names (``host=db ...``)
_CONNINFO_KEYS = frozenset(
    ("host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "service")
)


def is_conninfo(raw: str) -> bool:
    """Whether ``raw`` is a libpq ``key=value`` connection string (``host=db dbname=x``, spaces
    around ``=`` allowed): a PostgreSQL database, never a file name (the client's ``url``,
    ``botwire-server --database`` and ``--pg-listen-url``)."""
    text = "=".join(part.strip() for part in raw.split("="))
    return any(
        sep and key in _CONNINFO_KEYS
        for key, sep, _ in (word.partition("=") for word in text.split())
    )


def is_postgres(raw: str) -> bool:
    """Whether ``raw`` names a PostgreSQL database: a ``postgresql://`` (``postgres://``) URL
    or a connection string (:func:`is_conninfo`)."""
    return raw.startswith(("postgresql://", "postgres://")) or is_conninfo(raw)


_SCHEME_TYPOS = ("htp", "htpp", "htttp", "http:", "hhtp", "htps", "htpps", "httsp", "httpss")


def _suggest_http(raw: str) -> str | None:
    """The ``http(s)://`` URL ``raw`` probably means, or ``None`` for a plausible file name."""
    lowered = raw.lower()
    scheme, sep, rest = raw.partition("://")
    if sep:
        if scheme.lower() in _SCHEME_TYPOS:
            secure = "s" in scheme.lower().replace("http", "", 1) or scheme.lower() == "htps"
            return ("https://" if secure else "http://") + rest
        return None
    for name in ("https", "http"):  # http:/host, http//host, http:host
        for bad in (name + ":/", name + "//", name + ":"):
            if lowered.startswith(bad):
                return f"{name}://{raw[len(bad) :].lstrip('/')}"
    head = raw.split("/", 1)[0]
    if head.startswith("[") and "]:" in head:  # [::1]:8765
        host, port = head[1 : head.index("]:")], head[head.index("]:") + 2 :]
        if host and port.isdigit() and len(port) <= 5:
            return "http://" + raw
        return None
    host, colon, port = head.rpartition(":")
    if colon and host and port.isdigit() and len(port) <= 5 and _hostlike(host):
        return "http://" + raw
    if not colon and raw == head and (head == "localhost" or _ipv4(head)):
        return f"http://{head}:8765"
    return None


def _hostlike(host: str) -> bool:
    """Letters, digits, dots and dashes, as a host name or IPv4 address (no spaces, no '\\')."""
    return all(c.isalnum() or c in ".-" for c in host) and host.isascii()


def _ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def _check_three_slashes(raw: str, path: str, source: str) -> None:
    """``sqlite:///tmp/x.db`` is ``./tmp/x.db``; refuse it when only ``/tmp`` exists."""
    if not path or path.startswith(("/", "~", ".")) or "/" not in path:
        return
    first = path.split("/", 1)[0]
    if os.path.isdir(os.sep + first) and not os.path.exists(first):
        raise InvalidArgument(
            f"botwire: {source} {raw!r} names ./{path} relative to the working directory "
            f"{os.getcwd()} (sqlite:/// + a relative path), and ./{first} does not exist while "
            f"/{first} does. For /{path} write sqlite:////{path} (four slashes: absolute); for a "
            f"new ./{first} folder write sqlite:///./{path}."
        )


def _default_path() -> str:
    """``~/.botwire/memory.db``, or the temp directory when home is not writable.

    Either directory is private (0700): memory holds secrets an agent was told. The temp
    fallback ``$TMPDIR/botwire-<uid>`` is shared ground: one that another user made first (or a
    symlink, or one open to others) is refused, as tmux and ssh-agent do, or that user could
    read every value and plant their own.
    """
    home = os.path.expanduser("~/.botwire")
    try:
        os.makedirs(home, mode=0o700, exist_ok=True)
        if os.access(home, os.W_OK):
            _tighten(home)
            return os.path.join(home, "memory.db")
    except OSError:
        pass
    import tempfile  # only here: it imports shutil, random, bz2, lzma... (a cold start's ms)

    uid = os.getuid() if hasattr(os, "getuid") else None
    tmp = os.path.join(tempfile.gettempdir(), f"botwire-{uid if uid is not None else 'user'}")
    try:
        os.mkdir(tmp, 0o700)
    except FileExistsError:
        _check_private(tmp, uid)
    return os.path.join(tmp, "memory.db")


def _tighten(path: str) -> None:
    """Make our own directory 0700 (``~/.botwire`` was 0755 before 0.3.1)."""
    try:
        st = os.stat(path)
        if st.st_mode & 0o077 and (not hasattr(os, "getuid") or st.st_uid == os.getuid()):
            os.chmod(path, 0o700)
    except OSError:
        pass  # not ours to change: the store still works


def _check_private(path: str, uid: int | None) -> None:
    """Refuse a temp directory that is not a real directory of ours, open to no one else."""
    import stat

    st = os.lstat(path)
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif uid is not None and st.st_uid != uid:
        problem = f"belongs to another user (uid {st.st_uid})"
    elif st.st_mode & 0o077:
        problem = f"is open to other users (mode {stat.S_IMODE(st.st_mode):o})"
    if problem is None:
        return
    from ._errors import BotWireError

    raise BotWireError(
        f"botwire: the home directory is not writable, and the fallback directory {path!r} "
        f"{problem}, so memory stored there could be read or replaced by someone else. Remove "
        "it (or, if it is yours, chmod 700 it), or set BOTWIRE_URL to a server or to "
        "sqlite:///a/private/path.db."
    )


# -- shared backends -----------------------------------------------------------------------------

_lock = allocate_lock()


def _new_lock_in_child() -> None:
    """A forked child must not inherit ``_lock`` held by another thread of its parent."""
    global _lock
    _lock = allocate_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)
_stores: dict[tuple[Settings, bool], list[Any]] = {}  # (settings, is_async) -> [store, refcount]
_warned = False


def _warn_if_serverless(settings: Settings) -> None:
    global _warned
    if _warned or settings.is_http or not any(os.environ.get(v) for v in _SERVERLESS_VARS):
        return
    _warned = True
    import warnings  # only when warning

    warnings.warn(
        f"botwire: storing memory in the local file {settings.sqlite_path!r} inside a serverless "
        "runtime; local files do not survive cold starts or reach other instances. Set "
        "BOTWIRE_URL=https://your-botwire-server to keep memory across invocations.",
        BotWireWarning,
        stacklevel=4,
    )


def _open(settings: Settings) -> Store:
    if settings.is_http:
        from .backends._http_sync import HTTPStore

        store: Store = HTTPStore(
            settings.url,
            token=settings.token,
            timeout=settings.timeout,
            retries=settings.retries,
            keepalive_expiry=settings.keepalive_expiry,
        )
    else:
        from .store._sqlite import SQLiteStore

        store = SQLiteStore(settings.sqlite_path, busy_timeout=max(settings.timeout, 30.0))
    if os.environ.get("BOTWIRE_DEBUG", "") not in ("", "0"):
        store = _DebugStore(store, settings.url)
    return store


def _open_async(settings: Settings) -> AsyncStore:
    if settings.is_http:
        from .backends._http_async import AsyncHTTPStore

        store: AsyncStore = AsyncHTTPStore(
            settings.url,
            token=settings.token,
            timeout=settings.timeout,
            retries=settings.retries,
            keepalive_expiry=settings.keepalive_expiry,
        )
        if os.environ.get("BOTWIRE_DEBUG", "") not in ("", "0"):
            store = _AsyncDebugStore(store, settings.url)
        return store
    from .backends._threaded import ThreadedAsyncStore

    return ThreadedAsyncStore(_open(settings))


def acquire_store(settings: Settings) -> Store:
    """The shared sync backend for ``settings``; pair every call with :func:`release`."""
    _warn_if_serverless(settings)
    with _lock:
        slot = _stores.get((settings, False))
        if slot is None:
            slot = _stores[(settings, False)] = [_open(settings), 0]
        slot[1] += 1
        store: Store = slot[0]
        return store


def acquire_async_store(settings: Settings) -> AsyncStore:
    """The shared async backend for ``settings``; pair every call with :func:`release`."""
    _warn_if_serverless(settings)
    with _lock:
        slot = _stores.get((settings, True))
        if slot is None:
            slot = _stores[(settings, True)] = [None, 0]
    if slot[0] is None:
        opened = _open_async(settings)
        with _lock:
            if slot[0] is None:
                slot[0] = opened
    with _lock:
        slot[1] += 1
        store: AsyncStore = slot[0]
        return store


def release(settings: Settings, is_async: bool) -> Any:
    """Drop one reference; returns the backend to close when it was the last, else ``None``."""
    with _lock:
        slot = _stores.get((settings, is_async))
        if slot is None:
            return None
        slot[1] -= 1
        if slot[1] > 0:
            return None
        del _stores[(settings, is_async)]
        return slot[0]


# -- BOTWIRE_DEBUG=1 -----------------------------------------------------------------------------


def _log(url: str, what: str, started: float, outcome: str) -> None:
    ms = (time.perf_counter() - started) * 1000
    print(f"botwire: {what} via {url} -> {outcome} in {ms:.2f} ms", file=sys.stderr, flush=True)


def _describe(name: str, args: tuple[Any, ...]) -> str:
    if name == "batch":
        ops = args[1]
        return (
            f"{args[0]}: "
            + ", ".join(f"{op.kind} {op.key!r}" for op in ops[:5])
            + (" ..." if len(ops) > 5 else "")
        )
    return f"{name} {'/'.join(repr(a) for a in args)}"


class _DebugStore:
    """Logs every operation with its backend, outcome and milliseconds to stderr."""

    def __init__(self, store: Store | AsyncStore, url: str) -> None:
        self._store = store
        self._url = shown_url(url)  # stderr often ends up in shared logs

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name not in ("get", "batch", "list_keys", "clear", "usage"):
            return target

        def logged(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = target(*args, **kwargs)
            except Exception as exc:
                _log(self._url, _describe(name, args), started, f"{type(exc).__name__}")
                raise
            _log(self._url, _describe(name, args), started, "ok")
            return result

        return logged


class _AsyncDebugStore(_DebugStore):
    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name not in ("get", "batch", "list_keys", "clear", "usage"):
            return target

        async def logged(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await target(*args, **kwargs)
            except Exception as exc:
                _log(self._url, _describe(name, args), started, f"{type(exc).__name__}")
                raise
            _log(self._url, _describe(name, args), started, "ok")
            return result

        return logged
