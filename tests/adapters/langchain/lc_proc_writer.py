"""Child process: one concurrent writer of a shared chat history.

usage: lc_proc_writer.py NAMESPACE SESSION_ID WRITER COUNT GO_FILE [async]
Creates GO_FILE.ready-WRITER once imported, waits for GO_FILE, then adds COUNT
messages as COUNT/2 ``add_messages`` pairs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from langchain_core.messages import AIMessage, HumanMessage

from botwire_langchain import BotWireChatHistory


def main() -> None:
    namespace, session_id, writer, count, go_file = sys.argv[1:6]
    use_async = len(sys.argv) > 6 and sys.argv[6] == "async"
    history = BotWireChatHistory(session_id, namespace=namespace)
    pairs = [
        [HumanMessage(f"{writer}:{i}"), AIMessage(f"{writer}:{i + 1}")]
        for i in range(0, int(count), 2)
    ]
    with open(f"{go_file}.ready-{writer}", "w"):  # imports done
        pass
    deadline = time.monotonic() + 120
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise SystemExit("GO file never appeared")
        time.sleep(0.01)
    if use_async:

        async def run() -> None:
            for pair in pairs:
                await history.aadd_messages(pair)

        asyncio.run(run())
    else:
        for pair in pairs:
            history.add_messages(pair)
    print("done")


if __name__ == "__main__":
    main()
