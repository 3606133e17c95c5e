"""A hostile tenant, a missing token and a dead network: clear errors, nothing stored is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agent_framework import Message
from support.server import free_port, running_server

from botwire import Forbidden, Memory, Unauthorized, Unavailable
from botwire_agent_framework import BotWireHistoryProvider
from botwire_server.auth import mint_token

SECRET = "af-tenants-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def token_server() -> Iterator[str]:
    """A real botwire-server that needs a token for every request."""
    with running_server(env={"BOTWIRE_TOKEN_SECRET": SECRET}) as server:
        yield server.url


def hello(text: str) -> list[Message]:
    return [Message(role="user", contents=[text])]


def test_another_tenant_cannot_read_or_write_a_session(token_server: str) -> None:
    alice = mint_token(SECRET, ["tenant-a-*"], expires_in=600)
    mallory = mint_token(SECRET, ["tenant-m-*"], expires_in=600)
    alice_ro = mint_token(SECRET, ["tenant-a-*"], perm="read", expires_in=600)

    async def main() -> None:
        mine = BotWireHistoryProvider(namespace="tenant-a-bot", url=token_server, token=alice)
        await mine.save_messages("chat-1", hello("my secret"))
        thief = BotWireHistoryProvider(namespace="tenant-a-bot", url=token_server, token=mallory)
        reader = BotWireHistoryProvider(namespace="tenant-a-bot", url=token_server, token=alice_ro)
        anon = BotWireHistoryProvider(namespace="tenant-a-bot", url=token_server, token=None)
        try:
            for attempt in (
                thief.get_messages("chat-1"),
                thief.save_messages("chat-1", hello("x")),
            ):
                with pytest.raises(Forbidden, match=r"session 'chat-1'.*namespace 'tenant-a-bot'"):
                    await attempt
            assert [m.text for m in await reader.get_messages("chat-1")] == ["my secret"]
            with pytest.raises(Forbidden, match="session 'chat-1'"):
                await reader.save_messages("chat-1", hello("read-only writes"))
            with pytest.raises(Unauthorized, match=r"session 'chat-1'.*namespace 'tenant-a-bot'"):
                await anon.get_messages("chat-1")
            assert [m.text for m in await mine.get_messages("chat-1")] == ["my secret"]
        finally:
            for p in (mine, thief, reader, anon):
                await p.aclose()

    asyncio.run(main())


def test_dead_network_is_unavailable_naming_the_session() -> None:
    port = free_port()  # nothing listens there
    with Memory("af-net", url=f"http://127.0.0.1:{port}", timeout=1, retries=0) as m:
        h = BotWireHistoryProvider(memory=m)

        async def main() -> None:
            with pytest.raises(Unavailable, match=r"save 1 message\(s\) to session 's'.*af-net"):
                await h.save_messages("s", hello("lost?"))
            await h.aclose()

        asyncio.run(main())
