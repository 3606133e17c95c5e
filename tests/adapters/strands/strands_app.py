"""One serverless invocation of a Strands agent on botwire, as a fresh process.

    python strands_app.py NAMESPACE MODE SESSION_ID PROMPT [MODE SESSION_ID PROMPT ...]

MODE is ``snapshot`` or ``repository`` (``+tool`` appended: the model calls a tool first). The
handler is the one docs/strands.md shows (``BOTWIRE_URL`` comes from the environment). It prints
``RESULT [{"reply": ..., "messages": N, "restored": M, "texts": [...]}, ...]``, one per
invocation: M messages were restored before the prompt was added.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scripted import make_agent, reply_text
from strands.session import RepositorySessionManager, SnapshotSessionManager

from botwire_strands import BotWireSessionRepository, BotWireStorage


def handler(mode: str, namespace: str, session_id: str, prompt: str, tool: bool) -> dict:
    """The docs' handler: a fenced lease on the session around building and running the agent."""
    store: BotWireStorage | BotWireSessionRepository = (
        BotWireStorage(namespace) if mode == "snapshot" else BotWireSessionRepository(namespace)
    )
    with store.guard(session_id, ttl=60):
        if isinstance(store, BotWireStorage):
            manager = SnapshotSessionManager(session_id, storage=store)
        else:
            manager = RepositorySessionManager(session_id=session_id, session_repository=store)
        agent = make_agent(manager, tool=tool)
        restored = len(agent.messages)
        reply = reply_text(agent(prompt))
        texts = [b["text"] for m in agent.messages for b in m["content"] if "text" in b]
        return {
            "reply": reply,
            "messages": len(agent.messages),
            "restored": restored,
            "texts": texts,
        }


if __name__ == "__main__":
    namespace, rest = sys.argv[1], sys.argv[2:]
    results = []
    for i in range(0, len(rest), 3):
        mode, session_id, prompt = rest[i : i + 3]
        tool = mode.endswith("+tool")
        results.append(handler(mode.removesuffix("+tool"), namespace, session_id, prompt, tool))
    print("RESULT " + json.dumps(results))
