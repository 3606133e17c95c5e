"""Several processes adding messages to one chat lose none and keep each writer's
order, for both chat stores (and while another process archives)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import MessageStatus
from support.adapters import race_processes

from botwire_llamaindex import BotWireAsyncDBChatStore, BotWireChatStore

HERE = Path(__file__).parent
WRITERS = 6
PER_WRITER = 50


def _run_writers(
    memory_url: str, namespace: str, go: Path, jobs: list[tuple[str, str, int]]
) -> None:
    env = dict(os.environ, BOTWIRE_URL=memory_url)
    args = [[namespace, kind, "shared chat", w, str(count), str(go)] for kind, w, count in jobs]
    race_processes(HERE / "li_proc_writer.py", args, env, go, timeout=280)


def _check(contents: list[str | None]) -> None:
    assert len(contents) == WRITERS * PER_WRITER
    for w in range(WRITERS):
        mine = [c for c in contents if c is not None and c.startswith(f"w{w}:")]
        assert mine == [f"w{w}:{i}" for i in range(PER_WRITER)], f"writer w{w} out of order"


def _contents(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


def test_chat_store_writers(memory_url: str, namespace: str, tmp_path: Path) -> None:
    # Half the writers use add_message, half async_add_message.
    jobs = [("chat" if w % 2 else "chat-async", f"w{w}", PER_WRITER) for w in range(WRITERS)]
    _run_writers(memory_url, namespace, tmp_path / "go", jobs)
    store = BotWireChatStore(namespace, url=memory_url)
    _check(_contents(store.get_messages("shared chat")))


def test_db_chat_store_writers_with_an_archiver(
    memory_url: str, namespace: str, tmp_path: Path
) -> None:
    jobs = [("db", f"w{w}", PER_WRITER) for w in range(WRITERS)]
    jobs.append(("archiver", "archiver", 40))
    _run_writers(memory_url, namespace, tmp_path / "go", jobs)
    store = BotWireAsyncDBChatStore(namespace, url=memory_url)

    async def read() -> tuple[list[ChatMessage], int]:
        everything = await store.get_messages("shared chat", status=None)
        archived = await store.count_messages("shared chat", status=MessageStatus.ARCHIVED)
        return everything, archived

    everything, archived = asyncio.run(read())
    _check(_contents(everything))
    assert archived >= 40
