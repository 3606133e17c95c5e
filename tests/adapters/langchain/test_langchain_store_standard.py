"""langchain-tests' standard ``BaseStore`` suites, sync and async, for both stores."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests

from botwire import Memory
from botwire_langchain import BotWireByteStore, BotWireStore


# The async suites mix coroutine tests with the (sync) no-override check; mark the class
# for pytest-asyncio's strict mode and silence its note about the one sync test.
def async_suite(cls: type) -> type:
    cls = pytest.mark.asyncio(cls)
    return pytest.mark.filterwarnings("ignore:The test .* is marked with '@pytest.mark.asyncio'")(
        cls
    )


JSON_VALUES: tuple[Any, Any, Any] = (
    {"name": "Ada", "tags": ["x", "y"], "n": 1},
    [0.25, -1.5, 3],
    "plain text",
)
BYTE_VALUES: tuple[bytes, bytes, bytes] = (b"foo", b"\x00\xffbar", b"")


class TestBotWireStoreSync(BaseStoreSyncTests[Any]):
    @pytest.fixture
    def kv_store(self, memory_url: str, namespace: str) -> BotWireStore:
        return BotWireStore(memory=Memory(namespace, url=memory_url))

    @pytest.fixture
    def three_values(self) -> tuple[Any, Any, Any]:
        return JSON_VALUES


@async_suite
class TestBotWireStoreAsync(BaseStoreAsyncTests[Any]):
    @pytest.fixture
    def kv_store(self, memory_url: str, namespace: str) -> BotWireStore:
        return BotWireStore(memory=Memory(namespace, url=memory_url))

    @pytest.fixture
    def three_values(self) -> tuple[Any, Any, Any]:
        return JSON_VALUES


class TestBotWireByteStoreSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, memory_url: str, namespace: str) -> BotWireByteStore:
        return BotWireByteStore(memory=Memory(namespace, url=memory_url))

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return BYTE_VALUES


@async_suite
class TestBotWireByteStoreAsync(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, memory_url: str, namespace: str) -> BotWireByteStore:
        return BotWireByteStore(memory=Memory(namespace, url=memory_url))

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return BYTE_VALUES


class TestBotWireStorePrefixed(BaseStoreSyncTests[Any]):
    """The same suite with a ``key_prefix`` and another store's keys in the namespace."""

    @pytest.fixture
    def kv_store(self, memory_url: str, namespace: str) -> BotWireStore:
        memory = Memory(namespace, url=memory_url)
        memory.set("unrelated", 1)
        memory.set("cache/other", 2)
        return BotWireStore(memory=memory, key_prefix="store/")

    @pytest.fixture
    def three_values(self) -> tuple[Any, Any, Any]:
        return JSON_VALUES
