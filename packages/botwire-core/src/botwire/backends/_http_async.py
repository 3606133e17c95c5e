"""The async HTTP backend, on ``httpx.AsyncClient`` (``pip install "botwire[async]"``).

Requests, what a response means, the Store methods and the retry loop (``_http.HTTPCommands``)
and when to retry (``_retry``) are the sync backend's, written once; only I/O differs.
One client per event loop, since an ``httpx.AsyncClient`` belongs to the loop that opened it.
The network path is the sync client's too: the proxy comes from ``_proxy.proxy_for`` (httpx's
own environment reading is off), TLS trusts ``_proxy.ssl_context()``, idle connections expire
after ``keepalive_expiry``, a certificate failure raises :class:`~botwire.TLSError` (never
retried), and a forked child never uses its parent's clients.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

from .. import _fork
from .._memory import AsyncRun
from . import _http as h
from . import _proxy
from ._http import HTTPCommands
from ._retry import AttemptFailed

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHTTPStore"]


def _import_httpx() -> Any:
    try:
        import httpx
    except ModuleNotFoundError:
        raise ImportError(
            'AsyncMemory over HTTP needs httpx. Install it with: pip install "botwire[async]"'
        ) from None
    return httpx


def _h11_state(connection: Any) -> Any:
    """The ``h11.Connection`` under an httpcore pool connection (direct or proxied), or None."""
    for _ in range(4):
        state = getattr(connection, "_h11_state", None)
        if state is not None or connection is None:
            return state
        connection = getattr(connection, "_connection", None)
    return None


class _Guard:
    """An httpx transport wrapper for what httpx does not do:

    - a failed certificate check becomes :class:`TLSError` (not an ``httpx.ConnectError``, which
      the retry loop would retry until the deadline);
    - an idle pooled connection whose last response was followed by extra bytes is closed before
      it can carry a request (httpcore 1.0 checks only the socket, not the bytes h11 already
      buffered, so the next request would read them as its answer). This looks at httpcore
      internals defensively: if they change, the check is skipped, never the request."""

    def __init__(self, inner: Any, url: str, host: str) -> None:
        self._inner = inner
        self._url = url
        self._host = host

    async def _discard_desynchronised(self) -> None:
        try:
            connections = list(self._inner._pool.connections)
        except AttributeError:
            return
        for connection in connections:
            state = _h11_state(connection)
            try:
                dirty = state is not None and connection.is_idle() and state.trailing_data[0]
            except (AttributeError, TypeError):
                continue
            if dirty:
                await connection.aclose()  # the pool drops closed connections itself

    async def handle_async_request(self, request: Any) -> Any:
        import ssl  # already loaded by httpx

        await self._discard_desynchronised()
        try:
            return await self._inner.handle_async_request(request)
        except Exception as exc:
            cause: BaseException | None = exc
            while cause is not None:
                if isinstance(cause, ssl.SSLCertVerificationError):
                    raise _proxy.certificate_error(cause, self._url, self._host) from exc
                cause = cause.__cause__ or cause.__context__
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._inner.__aexit__(*args)


class AsyncHTTPStore(AsyncRun, HTTPCommands):
    """An :class:`~botwire.store.AsyncStore` that talks to a botwire server over HTTP."""

    _sleep = staticmethod(asyncio.sleep)

    def _open(self) -> None:
        """This transport's own state (the settings are :class:`HTTPCommands`')."""
        self._httpx = _import_httpx()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's clients (their sockets, their loops) are left alone,
        never used nor closed here; each loop of the child opens its own."""
        _fork.abandon(self._clients)
        self._clients = weakref.WeakKeyDictionary()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            httpx = self._httpx
            scheme = "https" if self.target.tls else "http"
            proxy = None
            if self.proxy is not None:
                auth = self.proxy.authorization
                proxy = httpx.Proxy(
                    self.proxy.url, headers={"Proxy-Authorization": auth} if auth else None
                )
            transport = httpx.AsyncHTTPTransport(
                verify=_proxy.ssl_context() if self.target.tls else True,
                trust_env=False,  # the environment was read once, by _proxy, as the sync client
                proxy=proxy,
                limits=httpx.Limits(
                    max_keepalive_connections=32, keepalive_expiry=self.keepalive_expiry
                ),
            )
            client = httpx.AsyncClient(
                base_url=f"{scheme}://{self.target.host_header}",
                timeout=self.timeout,
                transport=_Guard(transport, self.url, self.target.host),
                trust_env=False,
            )
            self._clients[loop] = client
        return client

    async def _exchange(self, call: h.Call, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """One attempt through this loop's client (httpx pools and reuses connections)."""
        headers = {k: v for k, v in call.headers.items() if k != "Host"}
        try:
            response = await self._client().request(
                call.method, call.path, headers=headers, content=call.body, timeout=timeout
            )
        except self._httpx.TransportError as exc:
            raise AttemptFailed(exc) from exc
        resp_headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status_code, resp_headers, response.content

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"AsyncHTTPStore({self.url!r})"
