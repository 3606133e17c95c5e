"""Child process: one chat turn through RunnableWithMessageHistory + BotWireChatHistory.

usage: lc_proc_chat.py SESSION_ID QUESTION REPLY [sync|async]
Prints one JSON line: what the model was shown and the stored history afterwards.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from lc_fake_model import ScriptedChatModel, scripted

from botwire_langchain import BotWireChatHistory

warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory is deprecated.*")


def main() -> None:
    session_id, question, reply = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "sync"
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are terse."),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    chain = RunnableWithMessageHistory(
        prompt | scripted(reply),
        lambda sid: BotWireChatHistory(sid),  # backend from BOTWIRE_URL
        input_messages_key="question",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": session_id}}
    if mode == "async":
        answer = asyncio.run(chain.ainvoke({"question": question}, config=config))
    else:
        answer = chain.invoke({"question": question}, config=config)
    stored = BotWireChatHistory(session_id).messages
    print(
        json.dumps(
            {
                "answer": answer.content,
                "prompt": [[m.type, m.content] for m in ScriptedChatModel.prompts[-1]],
                "history": [[m.type, m.content] for m in stored],
            }
        )
    )


if __name__ == "__main__":
    main()
