"""The async HTTP backend, on ``httpx.AsyncClient`` (``pip install "botwire[async]"``).

Requests, what a response means, the Store methods and the retry loop (``_http.HTTPCommands``)
and when to retry (``_retry``) are the sync backend's, written once; only I/O differs.
One client per event loop, since an ``httpx.AsyncClient`` belongs to the loop that opened it,
closed with its loop (``_LoopClient``): a warm handler calling ``asyncio.run()`` per invocation
leaked a client and its socket per call until the process ran out of descriptors.
The network path is the sync client's too: the proxy comes from ``_proxy.proxy_for`` (httpx's
own environment reading is off), TLS trusts ``_proxy.ssl_context()``, idle connections expire
after ``keepalive_expiry``, a certificate failure raises :class:`~botwire.TLSError` (never
retried), an unreachable proxy is named in the error, each attempt ends within its timeout
however slowly the peer sends, and a forked child never uses its parent's clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import weakref
from collections.abc import AsyncGenerator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _fork
from .._memory import AsyncRun
from . import _http as h
from . import _proxy
from ._http import HTTPCommands
from ._retry import AttemptFailed

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHTTPStore"]

T = TypeVar("T")


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


def _close_sockets(client: Any) -> None:
    """Close the sockets of a client whose event loop is closed: nothing can be awaited there
    any more, and its transports would hold their descriptors until collected. Defensive about
    httpcore's and asyncio's internals, as :class:`_Guard`: if they change, the sockets are
    left to the collector, never touched otherwise."""
    try:
        connections = list(client._transport._inner._pool.connections)
    except AttributeError:
        return
    for connection in connections:
        stream = None
        for _ in range(4):  # a proxied connection wraps the HTTP/1.1 one
            stream = getattr(connection, "_network_stream", None)
            if stream is not None or connection is None:
                break
            connection = getattr(connection, "_connection", None)
        try:
            wrapped = stream.get_extra_info("socket") if stream is not None else None
            raw = getattr(wrapped, "_sock", None)  # asyncio's TransportSocket has no close()
            if raw is not None:
                raw.close()
        except (OSError, AttributeError, RuntimeError):
            continue


class _LoopClient:
    """One event loop's client. The loop is held weakly (it may be collected once closed);
    ``closer`` is an async generator begun on that loop, so the loop's ``shutdown_asyncgens()``
    (run by ``asyncio.run()`` and ``asyncio.Runner`` before closing it) finalises it: the client
    is closed gracefully on its own live loop and forgotten. A loop closed without that is
    noticed when another loop opens a client, and its sockets closed (:func:`_close_sockets`)."""

    __slots__ = ("client", "closer", "loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, client: Any, closer: AsyncGenerator[None, None]
    ) -> None:
        self.loop = weakref.ref(loop)
        self.client = client
        self.closer = closer  # held here: the loop keeps its async generators weakly

    def dead(self) -> bool:
        loop = self.loop()
        return loop is None or loop.is_closed()


async def _within(timeout: float, awaitable: Awaitable[T]) -> T:
    """``awaitable`` within ``timeout`` seconds in all (httpx's timeouts are per read, so a
    peer trickling bytes held an attempt for as long as it liked)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


def _tls_failure(exc: BaseException) -> bool:
    import ssl  # already loaded by httpx

    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return False
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class AsyncHTTPStore(AsyncRun, HTTPCommands):
    """An :class:`~botwire.store.AsyncStore` that talks to a botwire server over HTTP."""

    _sleep = staticmethod(asyncio.sleep)

    def _open(self) -> None:
        """This transport's own state (the settings are :class:`HTTPCommands`')."""
        self._httpx = _import_httpx()
        self._clients: dict[int, _LoopClient] = {}  # by id(loop), checked against the loop
        _fork.register(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's clients (their sockets, their loops) are left alone,
        never used nor closed here; each loop of the child opens its own."""
        _fork.abandon(self._clients)
        self._clients = {}

    def _forget_dead(self) -> None:
        """Drop the clients of closed (or collected) loops, closing their sockets."""
        for key, entry in list(self._clients.items()):
            if entry.dead():
                del self._clients[key]
                _close_sockets(entry.client)

    async def _closer(self, key: int, client: Any) -> AsyncGenerator[None, None]:
        """See :class:`_LoopClient`: runs to its ``finally`` when the loop shuts down, or at
        :meth:`aclose`."""
        try:
            yield
        finally:
            entry = self._clients.get(key)
            if entry is not None and entry.client is client:
                del self._clients[key]
            with contextlib.suppress(Exception):  # closing: nothing left to report to
                await client.aclose()

    async def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is not None and entry.loop() is loop:
            found: httpx.AsyncClient = entry.client
            return found
        self._forget_dead()  # a new loop: an earlier one may have closed without a shutdown
        client = self._new_client()
        closer = self._closer(id(loop), client)
        self._clients[id(loop)] = _LoopClient(loop, client, closer)
        await closer.__anext__()  # begun on this loop: the loop now finalises it at shutdown
        return client

    def _new_client(self) -> httpx.AsyncClient:
        lib = self._httpx
        scheme = "https" if self.target.tls else "http"
        proxy = None
        if self.proxy is not None:
            auth = self.proxy.authorization
            proxy = lib.Proxy(
                self.proxy.url, headers={"Proxy-Authorization": auth} if auth else None
            )
        transport = lib.AsyncHTTPTransport(
            verify=_proxy.ssl_context() if self.target.tls else True,
            trust_env=False,  # the environment was read once, by _proxy, as the sync client
            proxy=proxy,
            limits=lib.Limits(max_keepalive_connections=32, keepalive_expiry=self.keepalive_expiry),
        )
        client: httpx.AsyncClient = lib.AsyncClient(
            base_url=f"{scheme}://{self.target.host_header}",
            timeout=self.timeout,
            transport=_Guard(transport, self.url, self.target.host),
            trust_env=False,
        )
        return client

    async def _exchange(self, call: h.Call, timeout: float) -> tuple[int, dict[str, str], bytes]:
        """One attempt through this loop's client (httpx pools and reuses connections), all of
        it within ``timeout``."""
        headers = {k: v for k, v in call.headers.items() if k != "Host"}
        client = await self._client()
        httpx = self._httpx
        try:
            response = await _within(
                timeout,
                client.request(
                    call.method, call.path, headers=headers, content=call.body, timeout=timeout
                ),
            )
        except asyncio.TimeoutError as exc:  # TimeoutError from 3.11; ours, not the caller's
            raise AttemptFailed(
                TimeoutError(f"timed out: no whole answer within {timeout:.1f} s")
            ) from exc
        except httpx.ProxyError as exc:  # CONNECT answered "<status> <reason>"
            status, proxy = str(exc).split(" ", 1)[0], self.proxy
            if proxy is not None and status.isdigit():
                refused = _proxy.tunnel_refused(proxy.url, self.target.host_header, int(status))
                if refused is not None:  # as the sync client: retrying cannot help
                    raise refused from exc
            raise AttemptFailed(exc) from exc
        except httpx.TransportError as exc:
            cause: BaseException = exc
            if (
                self.proxy is not None
                and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                and not _tls_failure(exc)
            ):  # named as the sync client names it
                cause = ConnectionError(f"proxy {self.proxy.url} (from the environment): {exc}")
                cause.__cause__ = exc
            cut = len(call.body or b"") > h.LARGE_BODY and (
                isinstance(exc, (httpx.WriteError, httpx.ReadError))
                or (isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc))
            )
            raise AttemptFailed(cause, upload_cut=cut) from exc
        resp_headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status_code, resp_headers, response.content

    async def aclose(self) -> None:
        """Close this loop's client (another running loop's is closed by its own shutdown)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._forget_dead()
        entry = self._clients.pop(id(loop), None)
        if entry is not None and entry.loop() is loop:
            await entry.closer.aclose()  # its finally closes the client

    def __repr__(self) -> str:
        from .._config import shown_url

        return f"AsyncHTTPStore({shown_url(self.url)!r})"
