"""``LISTEN botwire_changes`` on a connection of its own, on an event loop (the server's, or one
in a thread of its own for a store used without a server): how watchers hear of
writes made by other processes on one PostgreSQL database. Used by the server's watch hub
(``botwire_server.watch``) and by a :class:`~botwire_server.storage.postgres.PostgresStore`
used without a server (``_pg_watch``); each gives its own callbacks.

The listener reconnects when its connection is lost, and after every (re)connect calls
``on_connected``: notifications sent while it had no connection are lost, so its users wake
every waiter to re-read. Behind a transaction-mode pooler (PgBouncer) a ``LISTEN`` is lost too,
silently: its session goes back to the pool. So before it first reports itself connected, the
listener *probes*: it sends a notification of its own through ``notify_dsn`` (the URL writes
use) and waits :data:`PROBE_SECONDS` for it. If it never arrives, ``on_unusable`` says why and
the listener ends; its users poll instead.

The payload (one definition, :func:`notice` and :func:`parse`): namespaces separated by spaces;
a namespace whose written keys are known is followed by a *keyed* token, ``ns/h1/h2...``, each
``h`` the first :data:`HINT_CHARS` characters of a key, percent-encoded, so a listener wakes
only the waiters whose prefix such a key may be under (:func:`under`). Namespaces never hold
``/``: a listener that predates the keyed token takes it for a namespace nobody watches and
wakes on the plain one before it, as it always did. A server's payloads start with a token of
its own origin, ``/<hex>``, by which its listener skips them (its writes woke its waiters
already), whichever connection sent them: behind a pooler too, where a backend's pid tells
nothing.

The writers' side: a role without ``EXECUTE`` on ``pg_notify`` has every notification refused,
and asking again never mends it. :class:`NotifyGate` makes a writer (a server's hub, a store
without a server) say so once, with the fix, and send none for :data:`REFUSED_RETRY` s.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "CHANNEL",
    "HINT_CHARS",
    "MAX_HINTS",
    "PROBE_SECONDS",
    "RECONNECT_DELAY",
    "REFUSED_RETRY",
    "Listener",
    "NotifyGate",
    "covers",
    "hints",
    "notice",
    "origin",
    "parse",
    "refusal",
    "under",
]

log = logging.getLogger("botwire_server.watch")

#: The PostgreSQL notification channel; the payload is namespaces separated by spaces (module).
CHANNEL = "botwire_changes"
#: A key's hint in a notification: its first this many characters (a longer prefix is matched
#: conservatively: :func:`under`).
HINT_CHARS = 64
#: At most this many hints per namespace in one notification; beyond, none (all its waiters wake).
MAX_HINTS = 32
#: A keyed token longer than this is left out (its namespace's plain token wakes all).
_KEYED_MAX = 3000
#: How long the listener waits for its own probe notification before it gives up on LISTEN.
PROBE_SECONDS = 5.0
#: The first wait before reconnecting (doubled after each failure, up to 5 s).
RECONNECT_DELAY = 0.1
#: The longest the listener blocks in one wait for notifications (how soon ``stop`` is seen).
_TICK = 0.5
#: After PostgreSQL refused a writer's notification for want of privilege, how long the writer
#: sends none (a ``GRANT`` made meanwhile is used within it).
REFUSED_RETRY = 60.0
#: SQLSTATE ``insufficient_privilege``
_REFUSED = "42501"


def hints(keys: Collection[str]) -> set[str]:
    """The hints of ``keys`` (each key's first :data:`HINT_CHARS` characters)."""
    return {key[:HINT_CHARS] for key in keys}


def under(prefix: str, hint: str) -> bool:
    """Whether a key with this hint may be under ``prefix``: exact for a key or a prefix of at
    most :data:`HINT_CHARS` characters; a longer prefix that extends a cut-off hint counts."""
    return hint.startswith(prefix) or (len(hint) >= HINT_CHARS and prefix.startswith(hint))


def covers(keys: Collection[str]) -> Callable[[str], bool]:
    """:func:`under` for many keys (or hints) at once: the test returned says whether one of
    them may be under a prefix, in O(log n) per prefix (sorted once), so a write of 1,000 keys
    does not cost 1,000 comparisons per waiting poll. Example: ``covers(["a/b"])("a/")``."""
    ordered = sorted(hints(keys))
    cut = {hint for hint in ordered if len(hint) >= HINT_CHARS}

    def test(prefix: str) -> bool:
        # the keys under a prefix sort together, from the first key at or above it
        i = bisect.bisect_left(ordered, prefix)
        if i < len(ordered) and ordered[i].startswith(prefix):
            return True
        return len(prefix) > HINT_CHARS and prefix[:HINT_CHARS] in cut

    return test


def origin() -> str:
    """A new sender's origin token, with the space that ends it: a payload's first token,
    ``/<hex>`` (``/`` is never in a namespace: :func:`parse` skips it, and a listener that
    predates it wakes nobody for it). Example: ``origin() + notice("a", None)``."""
    return f"/{uuid.uuid4().hex[:16]} "


def notice(ns: str, keys: Collection[str] | None) -> str:
    """``ns``'s part of a payload: ``ns``, then, when the written keys are known (at most
    :data:`MAX_HINTS` hints), its keyed token. Example: ``notice("a", ["x y"]) == "a a/x%20y"``."""
    if keys is None or not keys or len(keys) > MAX_HINTS:
        return ns
    keyed = "/".join(quote(hint, safe="") for hint in sorted(hints(keys)))
    return ns if len(keyed) > _KEYED_MAX else f"{ns} {ns}/{keyed}"


def parse(payload: str) -> Iterator[tuple[str, list[str] | None]]:
    """Each namespace a payload names, with its key hints (``None``: unknown, wake them all)."""
    tokens = payload.split(" ")
    for i, token in enumerate(tokens):
        ns, keyed, rest = token.partition("/")
        if not ns:  # the sender's :func:`origin`, no namespace
            continue
        if keyed:
            yield ns, [unquote(hint) for hint in rest.split("/")]
        elif not (i + 1 < len(tokens) and tokens[i + 1].startswith(token + "/")):
            yield token, None


def refusal(exc: BaseException) -> BaseException | None:
    """PostgreSQL's refusal for want of privilege that ``exc`` is or was raised from."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "sqlstate", None) != _REFUSED:
        cause = cause.__cause__
    return cause


class NotifyGate:
    """Whether a writer sends the watch's notifications: not for :data:`REFUSED_RETRY` s after
    PostgreSQL refused one for want of privilege. The first refusal (and the first after
    notifications went through again) is logged as a warning naming the fix; later ones at
    debug level. ``who`` names the writer in the log.

    Example::

        gate = NotifyGate("this replica")
        if gate.open():
            try:
                send_notify()
            except psycopg.Error as exc:
                if gate.settle(exc):
                    raise
            else:
                gate.settle(None)
    """

    def __init__(self, who: str) -> None:
        self._who = who
        self._until = 0.0  # time.monotonic() before which nothing is sent; 0: never refused
        self._warned = False

    def open(self) -> bool:
        """Whether to send a notification now."""
        return self._until == 0.0 or time.monotonic() >= self._until

    def refused(self, exc: BaseException) -> bool:
        """Whether ``exc`` (or what it was raised from) is PostgreSQL's refusal for want of
        privilege; if so, the gate closes for :data:`REFUSED_RETRY` s."""
        cause = refusal(exc)
        if cause is None:
            return False
        self._until = time.monotonic() + REFUSED_RETRY
        if self._warned:
            log.debug("watch: %s's notification refused again (%s)", self._who, cause)
            return True
        self._warned = True
        log.warning(
            "watch: PostgreSQL refused %s's notification (%s). Its writes are committed and "
            "go on, but other processes' waiting watches see them only when they re-read (a "
            "server's poll or hold, a store's re-read each second). The fix: GRANT EXECUTE ON "
            "FUNCTION pg_notify(text, text) TO the role in the database URL. Notifications are "
            "tried again every %.0f s.",
            self._who,
            cause,
            REFUSED_RETRY,
        )
        return True

    def settle(self, error: BaseException | None) -> bool:
        """After a send: ``None`` (it went through) is :meth:`passed`, a refusal
        :meth:`refused`; whether ``error`` is another failure, for the caller to log."""
        if error is None:
            self.passed()
            return False
        return not self.refused(error)

    def passed(self) -> None:
        """A notification went through (after a refusal: the privilege was granted)."""
        if self._warned:
            self._warned = False
            self._until = 0.0
            log.warning("watch: %s's notifications are accepted again", self._who)


class Listener:
    """Listens on :data:`CHANNEL` and hands each payload to ``on_payload``, on an event loop:
    the server's own (:meth:`start_in_loop`: the server's watch hub), or one of its own in a
    thread (:meth:`start`: a store used without a server). Either way one definition
    (:meth:`listen`) connects, probes, reconnects and stops.

    Example::

        listener = Listener(url, url, {"autocommit": True}, on_payload=print,
                            on_connected=lambda: None, on_unusable=print)
        listener.start()
        ...
        listener.stop()

    The callbacks run on the listener's loop (in the listener's thread after :meth:`start`);
    each payload is handed on, the listener's own users' too (the server's hub skips its own by
    their origin token).

    Why the server listens on its own loop: a thread of its own woke for every notification,
    the replica's own included, and took the interpreter's lock from the event loop to read it.
    Under write load (P3, PostgreSQL) that handoff cost the event loop 5-8% of its writes.
    """

    def __init__(
        self,
        listen_dsn: str,
        notify_dsn: str,
        connect_kwargs: dict[str, Any],
        *,
        on_payload: Callable[[str], object],
        on_connected: Callable[[], object],
        on_unusable: Callable[[str], object],
        name: str = "botwire-listen",
    ) -> None:
        self._listen_dsn, self._notify_dsn = listen_dsn, notify_dsn
        self._kwargs = {**connect_kwargs, "autocommit": True}
        self._on_payload, self._on_connected = on_payload, on_connected
        self._on_unusable = on_unusable
        self._stop = threading.Event()
        self._name = name
        self._thread = threading.Thread(target=self._run_thread, name=name, daemon=True)
        self._task: asyncio.Task[None] | None = None
        #: the backend of the listening connection while there is one (tests end it)
        self.backend_pid = 0
        self.conn: Any = None

    def start(self) -> None:
        """Listen in a thread of its own, on an event loop of its own."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop (after :meth:`start`), and wait up to ``timeout`` s for the thread to end."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def start_in_loop(self) -> None:
        """Listen as a task of the running event loop (no thread: see the class)."""
        self._task = asyncio.get_running_loop().create_task(self.listen(), name=self._name)

    async def aclose(self) -> None:
        """Stop (after :meth:`start_in_loop`): the task is cancelled and awaited, which closes
        its connection."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _run_thread(self) -> None:
        # psycopg's async connections need a selector loop (never a proactor, on Windows)
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            runner.run(self.listen())

    async def listen(self) -> None:
        """Listen until stopped, reconnecting with a growing delay (:data:`RECONNECT_DELAY`
        doubled, up to 5 s)."""
        import psycopg

        delay = RECONNECT_DELAY
        probed = False
        while not self._stop.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(self._listen_dsn, **self._kwargs)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not probed:
                        why = await self._probe(conn)
                        if why is not None:
                            self._on_unusable(why)
                            return
                        probed = True
                    self.backend_pid = conn.info.backend_pid
                    self.conn = conn  # kept: a forked child abandons it, never closes it
                    self._on_connected()
                    delay = RECONNECT_DELAY
                    while not self._stop.is_set():
                        async for note in conn.notifies(timeout=_TICK):
                            self._on_payload(note.payload)
            except Exception as exc:
                self.backend_pid = 0
                if self._stop.is_set():
                    return
                log.warning("watch listener lost its connection (%s); reconnecting", exc)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
        self.backend_pid = 0

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less once stopped (seen every :data:`_TICK`)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, _TICK))

    async def _probe(self, conn: Any) -> str | None:
        """Send a notification through ``notify_dsn`` (as writes do) and wait for it on the
        listening ``conn``: why LISTEN cannot serve here, or ``None`` when it arrived."""
        import psycopg

        payload = f"botwire-listen-probe-{uuid.uuid4().hex}"
        try:
            sender = await psycopg.AsyncConnection.connect(self._notify_dsn, **self._kwargs)
            async with sender:
                await sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except psycopg.errors.InsufficientPrivilege as exc:
            # Asking again never helps; nobody's notifications arrive either if writers
            # share the role (theirs are refused too, and logged by them).
            return f"the role may not send notifications ({exc})"
        deadline = time.monotonic() + PROBE_SECONDS
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            async for note in conn.notifies(timeout=min(left, _TICK)):
                if note.payload == payload:
                    return None
                self._on_payload(note.payload)
        if self._stop.is_set():
            return None
        return (
            "the watch's LISTEN connection did not receive a notification sent through the "
            f"database URL within {PROBE_SECONDS} s (a transaction-mode pooler on the LISTEN URL?)"
        )
