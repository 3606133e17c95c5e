"""The async HTTP backend, on ``httpx.AsyncClient`` (``pip install "botwire[async]"``).

Requests and what a response means (``_http``) and when to retry (``_retry``) are the sync
backend's; only I/O differs.
One client per event loop, since an ``httpx.AsyncClient`` belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._types import Entry, KeyPage, Op, Usage
from . import _http as h
from ._retry import DEFAULT_RETRIES, Attempts

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


class AsyncHTTPStore:
    """An :class:`~botwire.store.AsyncStore` that talks to a botwire server over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
    ) -> None:
        self._httpx = _import_httpx()
        self.url = url
        self.target = h.Target.parse(url)
        self.timeout = timeout
        self.retries = retries
        self.deadline = deadline if deadline is not None else timeout * (retries + 1)
        self._headers = h.base_headers(self.target, token)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            scheme = "https" if self.target.tls else "http"
            client = self._httpx.AsyncClient(
                base_url=f"{scheme}://{self.target.host_header}",
                timeout=self.timeout,
                limits=self._httpx.Limits(max_keepalive_connections=32),
            )
            self._clients[loop] = client
        return client

    async def _send(self, call: h.Call) -> Any:
        """Send ``call`` until it gets a final answer; :mod:`._retry` decides what is final."""
        httpx = self._httpx
        attempts = Attempts(
            call, timeout=self.timeout, retries=self.retries, deadline=self.deadline
        )
        headers = {k: v for k, v in call.headers.items() if k != "Host"}
        while True:
            timeout = attempts.begin()
            try:
                response = await self._client().request(
                    call.method, call.path, headers=headers, content=call.body, timeout=timeout
                )
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.failed(exc))
                continue
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            done, value = attempts.answered(response.status_code, resp_headers, response.content)
            if done:
                return value
            await asyncio.sleep(value)

    async def get(self, namespace: str, key: str, *, tail: int | None = None) -> Entry | None:
        entry: Entry | None = await self._send(
            h.get_call(self.target, self._headers, namespace, key, tail)
        )
        return entry

    async def batch(
        self,
        namespace: str,
        ops: Sequence[Op],
        *,
        atomic: bool = True,
        idempotency_key: str | None = None,
    ) -> list[dict[str, Any]]:
        call = h.batch_call(self.target, self._headers, namespace, ops, atomic, idempotency_key)
        results: list[dict[str, Any]] = await self._send(call)
        return results

    async def list_keys(
        self, namespace: str, *, prefix: str = "", cursor: str | None = None, limit: int = 1000
    ) -> KeyPage:
        page: KeyPage = await self._send(
            h.list_call(self.target, self._headers, namespace, prefix, cursor, limit)
        )
        return page

    async def clear(self, namespace: str) -> int:
        deleted: int = await self._send(h.clear_call(self.target, self._headers, namespace))
        return deleted

    async def usage(self, namespace: str) -> Usage:
        usage: Usage = await self._send(h.usage_call(self.target, self._headers, namespace))
        return usage

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
