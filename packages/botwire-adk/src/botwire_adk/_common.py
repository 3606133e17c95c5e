"""Keys, clients and the ``botwire://`` URI shared by the three ADK services.

Every ADK id (app, user, session, filename) becomes one ``/``-separated key segment with ``%``
and ``/`` percent-encoded, so no id can reach into another's keys and a prefix listing of one
user never returns another user's keys (``alice`` vs ``alice/x``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from botwire import AsyncMemory, Memory

#: The botwire namespace the services use when none is given.
DEFAULT_NAMESPACE = "adk"


def seg(value: str) -> str:
    """One key segment: ``value`` with ``%`` and ``/`` escaped (``quote`` with no safe chars)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"botwire-adk: ids must be non-empty strings, got {value!r}")
    return quote(value, safe="")


def app_state_key(app: str) -> str:
    return f"app/{seg(app)}/state"


def user_prefix(app: str) -> str:
    return f"app/{seg(app)}/user/"


def user_state_key(app: str, user: str) -> str:
    return f"{user_prefix(app)}{seg(user)}/state"


def session_prefix(app: str, user: str) -> str:
    return f"{user_prefix(app)}{seg(user)}/session/"


def session_key(app: str, user: str, sid: str) -> str:
    """The session's record: session-scoped state, times, event count. Its version is the
    optimistic-concurrency marker."""
    return f"{session_prefix(app, user)}{seg(sid)}"


def events_key(app: str, user: str, sid: str) -> str:
    """The session's events: a botwire list, appended server-side."""
    return f"{session_key(app, user, sid)}/events"


def parse_uri(uri: str) -> tuple[str | None, str | None]:
    """``(url, namespace)`` from ``botwire://HOST[:PORT]/NAMESPACE[?tls=1]``.

    ``botwire:///NAMESPACE`` (no host) uses ``BOTWIRE_URL`` (or the embedded store);
    ``?tls=1`` speaks https. The token always comes from ``BOTWIRE_TOKEN``, never the URI, so
    it stays out of command lines and logs.
    """
    parts = urlparse(uri)
    if parts.scheme not in ("botwire", "botwires"):
        raise ValueError(
            f"botwire-adk: {uri!r} is not a botwire URI; use botwire://HOST:PORT/NAMESPACE "
            "(or botwire:///NAMESPACE to take the server from BOTWIRE_URL)"
        )
    namespace = parts.path.strip("/") or None
    url = None
    if parts.netloc:
        tls = parts.scheme == "botwires" or parse_qs(parts.query).get("tls", ["0"])[0] in (
            "1",
            "true",
            "yes",
        )
        url = f"{'https' if tls else 'http'}://{parts.netloc}"
    return url, namespace


def make_client(
    namespace: str | None,
    memory: Memory | AsyncMemory | None,
    url: str | None,
    token: str | None,
    uri: str | None,
) -> AsyncMemory:
    """The async client a service uses (ADK's services are all coroutines)."""
    if uri is not None:
        uri_url, uri_ns = parse_uri(uri)
        url = url or uri_url
        namespace = namespace or uri_ns
    if isinstance(memory, AsyncMemory):
        return memory if namespace in (None, memory.namespace) else memory.with_namespace(namespace)
    if isinstance(memory, Memory):
        if namespace not in (None, memory.namespace):
            memory = memory.with_namespace(namespace)
        return memory.as_async()
    if memory is not None:
        raise TypeError(
            "botwire-adk: memory= must be a botwire.Memory or AsyncMemory, got "
            f"{type(memory).__name__}"
        )
    token = token or os.environ.get("BOTWIRE_TOKEN") or None
    return AsyncMemory(namespace or DEFAULT_NAMESPACE, url=url, token=token)


class ClientService:
    """The constructor the three services share: one botwire client, from any of the ways to
    name one (``namespace``, ``memory``, ``url``/``token``, an ADK ``uri``).

    Args:
        namespace: botwire namespace holding every app's data (default ``"adk"``).
        memory: a ``botwire.Memory`` or ``AsyncMemory`` to use instead of making one.
        url, token: the botwire server (default ``BOTWIRE_URL``/``BOTWIRE_TOKEN``, else the
            embedded store).
        uri: ``botwire://HOST:PORT/NAMESPACE`` as given to ``adk web --session_service_uri``.
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        url: str | None = None,
        token: str | None = None,
        uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        ignore_kwargs(kwargs)
        self._mem = make_client(namespace, memory, url, token, uri)

    @property
    def memory(self) -> AsyncMemory:
        """The botwire client the service stores through."""
        return self._mem


def ignore_kwargs(kwargs: dict[str, Any]) -> None:
    """ADK's registry passes ``agents_dir=`` and CLI kwargs to every factory; only those are
    tolerated, so a misspelt option still fails loudly."""
    unknown = set(kwargs) - {"agents_dir"}
    if unknown:
        raise TypeError(f"botwire-adk: unexpected options {sorted(unknown)}")


def memory_prefix(app: str, user: str) -> str:
    """Every memory bucket of one user: ``mem/<app>/<user>/...``."""
    return f"mem/{seg(app)}/{seg(user)}/"
