"""Runs in a fresh Python process (a simulated serverless invocation); prints ``RESULT <json>``.

    python pa_worker.py turn URLS NS TEXT                 # one turn, store + message history
    python pa_worker.py save URLS NS TAG N GO             # N conversation saves, after GO exists

URLS is a comma-separated list of backends (an embedded file, a server): the process does the
same work on each, so one process stands for one invocation on every backend.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from pa_helpers import echo_agent
from pydantic_ai.conversation import Conversation
from pydantic_ai.conversation_store import ConversationConflict
from pydantic_ai.messages import ModelRequest, UserPromptPart

from botwire_pydantic_ai import BotWireConversationStore, run_with_history


async def turn(urls: list[str], ns: str, text: str) -> list[dict[str, Any]]:
    outs = []
    for url in urls:
        store = BotWireConversationStore(ns, url=url)
        conversation = await store.load("chat") or Conversation(conversation_id="chat")
        result = await echo_agent().run(text, conversation=conversation)
        await store.save(result)
        await store.aclose()
        plain = await run_with_history(echo_agent(), text, "plain", namespace=ns, url=url)
        outs.append({"store": result.output, "history": plain.output})
    return outs


async def save(urls: list[str], ns: str, tag: str, n: int, go: str) -> dict[str, Any]:
    stores = [BotWireConversationStore(ns, url=url) for url in urls]
    Path(f"{go}.ready-{tag}").touch()
    while not Path(go).exists():
        time.sleep(0.01)
    conflicts = 0
    for i in range(n):
        for store in stores:  # interleaved: both backends under contention at once
            while True:
                # The last few messages are enough to save after: the race is on the save.
                conv = await store.load("busy", limit=4) or Conversation(conversation_id="busy")
                conv.messages.append(ModelRequest(parts=[UserPromptPart(f"{tag}-{i}")]))
                try:
                    await store.save(conv)
                    break
                except ConversationConflict:  # the framework's own error: reload, retry
                    conflicts += 1
    for store in stores:
        await store.aclose()
    Path(f"{go}.conflicts-{tag}").write_text(str(conflicts))
    return {"saved": n, "conflicts": conflicts}


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    urls = args[0].split(",")
    if mode == "turn":
        coro = turn(urls, args[1], args[2])
    else:
        coro = save(urls, args[1], args[2], int(args[3]), args[4])
    print("RESULT " + json.dumps(asyncio.run(coro)))
