"""Child process: one concurrent writer of a shared LlamaIndex chat.

usage: li_proc_writer.py NAMESPACE KIND SESSION WRITER COUNT GO_FILE
KIND: chat (BotWireChatStore.add_message), chat-async (async_add_message),
      db (BotWireAsyncDBChatStore.add_message), archiver (archives the 2 oldest
      active messages of SESSION again and again until COUNT have moved).
Creates GO_FILE.ready-WRITER once imported, then waits for GO_FILE before writing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from llama_index.core.base.llms.types import ChatMessage

from botwire_llamaindex import BotWireAsyncDBChatStore, BotWireChatStore


def wait_for(go_file: str, writer: str) -> None:
    """Say this process is ready (imports done), then wait for the common start."""
    with open(f"{go_file}.ready-{writer}", "w"):
        pass
    deadline = time.monotonic() + 120
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise SystemExit("GO file never appeared")
        time.sleep(0.01)


async def main() -> None:
    namespace, kind, session, writer, count, go_file = sys.argv[1:7]
    n = int(count)
    messages = [ChatMessage(role="user", content=f"{writer}:{i}") for i in range(n)]
    chat = BotWireChatStore(namespace)
    db = BotWireAsyncDBChatStore(namespace)
    wait_for(go_file, writer)
    if kind == "archiver":
        # Archive until COUNT messages have moved, whatever the writers' pace.
        moved, deadline = 0, time.monotonic() + 120
        while moved < n and time.monotonic() < deadline:
            got = len(await db.archive_oldest_messages(session, 2))
            moved += got
            await asyncio.sleep(0.002 if got else 0.02)
        print(f"archived {moved}")
        return
    for m in messages:
        if kind == "chat":
            chat.add_message(session, m)
        elif kind == "chat-async":
            await chat.async_add_message(session, m)
        elif kind == "db":
            await db.add_message(session, m)
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
