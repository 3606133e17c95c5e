"""The HTTP backends' Store methods and retry loop are one definition (``_http.HTTPCommands``):
the sync store runs each as a plain call, the async store as a coroutine, so a fix to the loop
or to a call reaches both."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
from support.server import free_port

from botwire import Unavailable
from botwire.backends._http import HTTPCommands
from botwire.backends._http_async import AsyncHTTPStore
from botwire.backends._http_sync import HTTPStore

STORE_METHODS = ("get", "batch", "list_keys", "clear", "usage")


@pytest.mark.parametrize("name", STORE_METHODS)
def test_both_backends_run_the_same_definition(name: str) -> None:
    shared = vars(HTTPCommands)[name]
    sync, aio = getattr(HTTPStore, name), getattr(AsyncHTTPStore, name)
    assert sync.__wrapped__ is shared and aio.__wrapped__ is shared
    assert not inspect.iscoroutinefunction(sync) and inspect.iscoroutinefunction(aio)
    assert inspect.signature(sync) == inspect.signature(aio)  # the same parameters, both sides
    assert sync.__doc__ == aio.__doc__


def test_both_backends_give_up_alike_on_a_dead_server() -> None:
    # Nothing listens on the port: every attempt is refused, both loops retry then raise the
    # same Unavailable, naming the address and the attempts.
    url = f"http://127.0.0.1:{free_port()}"
    kwargs = {"timeout": 0.5, "retries": 2}
    with pytest.raises(Unavailable) as sync_info:
        HTTPStore(url, **kwargs).get("ns", "k")  # type: ignore[arg-type]

    async def main() -> None:
        store = AsyncHTTPStore(url, **kwargs)  # type: ignore[arg-type]
        try:
            await store.get("ns", "k")
        finally:
            await store.aclose()

    with pytest.raises(Unavailable) as async_info:
        asyncio.run(main())
    for info in (sync_info, async_info):
        assert "3 attempts" in str(info.value) and "retries=2" in str(info.value), str(info.value)
    print(f"FIGURE sync: {sync_info.value}\nFIGURE async: {async_info.value}")


def test_cancelling_an_async_call_during_its_backoff_stops_it_at_once() -> None:
    # The shared loop sleeps through the runner (asyncio.sleep, awaited): a cancellation must
    # end the call there, not be swallowed as a failed attempt and retried.
    url = f"http://127.0.0.1:{free_port()}"

    async def main() -> float:
        store = AsyncHTTPStore(url, timeout=5.0, retries=50)
        task = asyncio.ensure_future(store.get("ns", "k"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.aclose()
        return time.monotonic() - started

    took = asyncio.run(main())
    print(f"FIGURE cancelled in {took * 1000:.1f} ms")
    assert took < 5.0  # generous: a swallowed cancellation retries for 50 x 5 s
