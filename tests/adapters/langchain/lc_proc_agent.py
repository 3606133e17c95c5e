"""Child process: a tool-calling agent loop whose memory is BotWireChatHistory.

usage: lc_proc_agent.py SESSION_ID (turn1|turn2|show)

turn1: the user states a fact; the model calls the ``remember`` tool, then answers.
turn2: the user asks again; the model answers with what it was shown (a fresh process:
       only the stored history can tell it).
Each turn is written with ONE ``add_messages`` call. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from lc_fake_model import ScriptedChatModel, scripted

from botwire_langchain import BotWireChatHistory


@tool
def remember(fact: str) -> str:
    """Remember a fact about the user."""
    return f"stored: {fact}"


def run_turn(history: BotWireChatHistory, user: str, model: ScriptedChatModel) -> list[BaseMessage]:
    llm = model.bind_tools([remember])
    new: list[BaseMessage] = [HumanMessage(user)]
    for _ in range(5):
        ai = llm.invoke(history.messages + new)
        new.append(ai)
        if not ai.tool_calls:  # type: ignore[attr-defined]
            break
        for call in ai.tool_calls:  # type: ignore[attr-defined]
            new.append(remember.invoke(call))
    history.add_messages(new)
    return new


def main() -> None:
    session_id, step = sys.argv[1], sys.argv[2]
    history = BotWireChatHistory(session_id, max_messages=50)
    if step == "turn1":
        call = {
            "name": "remember",
            "args": {"fact": "likes tea"},
            "id": "call_1",
            "type": "tool_call",
        }
        model = scripted(AIMessage(content="", tool_calls=[call]), AIMessage("Noted: tea."))
        run_turn(history, "I like tea.", model)
    elif step == "turn2":
        run_turn(history, "What do I like?", scripted(AIMessage("You like tea.")))
        seen = ScriptedChatModel.prompts[-1]
        print(json.dumps({"seen": [[m.type, m.content] for m in seen]}))
        return
    out = []
    for m in history.messages:
        out.append([m.type, m.content, getattr(m, "tool_calls", None) or None])
    print(json.dumps({"history": out}))


if __name__ == "__main__":
    main()
