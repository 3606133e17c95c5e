"""BotWireChatHistory under RunnableWithMessageHistory and in an agent loop, with each
invocation in a fresh Python process (as on serverless compute)."""

from __future__ import annotations

import json
import warnings

import pytest
from adapters.langchain.lc_fake_model import ScriptedChatModel, scripted
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from botwire import Memory
from botwire_langchain import BotWireChatHistory

pytestmark = pytest.mark.filterwarnings("ignore:.*RunnableWithMessageHistory is deprecated")


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _chain(memory: Memory, reply: str) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{question}")]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RunnableWithMessageHistory(
            prompt | scripted(reply),
            lambda session_id: BotWireChatHistory(session_id, memory=memory),
            input_messages_key="question",
            history_messages_key="history",
        )


def test_in_process_sync_and_async(memory: Memory) -> None:
    import asyncio

    config = {"configurable": {"session_id": "s1"}}
    assert _chain(memory, "hello 1").invoke({"question": "hi"}, config=config).content == "hello 1"
    answer = asyncio.run(_chain(memory, "hello 2").ainvoke({"question": "again"}, config=config))
    assert answer.content == "hello 2"
    assert [m.content for m in ScriptedChatModel.prompts[-1]] == ["hi", "hello 1", "again"]
    stored = BotWireChatHistory("s1", memory=memory).messages
    assert [(m.type, m.content) for m in stored] == [
        ("human", "hi"),
        ("ai", "hello 1"),
        ("human", "again"),
        ("ai", "hello 2"),
    ]


def test_without_history_messages_key(memory: Memory) -> None:
    """Input is a message list; the wrapper strips the prepended history itself."""
    from langchain_core.messages import HumanMessage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = RunnableWithMessageHistory(
            scripted("one", "two"), lambda sid: BotWireChatHistory(sid, memory=memory)
        )
    config = {"configurable": {"session_id": "plain"}}
    chain.invoke([HumanMessage("a")], config=config)
    chain.invoke([HumanMessage("b")], config=config)
    stored = BotWireChatHistory("plain", memory=memory).messages
    assert [m.content for m in stored] == ["a", "one", "b", "two"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_second_fresh_process_sees_the_first(run_script, namespace: str, mode: str) -> None:
    session = f"chat-{namespace}"
    first = _last_json(
        run_script("lc_proc_chat.py", session, "My name is Ada.", "Hi Ada", mode).stdout
    )
    assert first["history"] == [["human", "My name is Ada."], ["ai", "Hi Ada"]]
    second = _last_json(run_script("lc_proc_chat.py", session, "Who am I?", "Ada.", mode).stdout)
    # The model in the second process was shown the first process's turn.
    assert second["prompt"] == [
        ["system", "You are terse."],
        ["human", "My name is Ada."],
        ["ai", "Hi Ada"],
        ["human", "Who am I?"],
    ]
    assert second["history"][-2:] == [["human", "Who am I?"], ["ai", "Ada."]]
    assert len(second["history"]) == 4


def test_agent_loop_across_processes(run_script, namespace: str, memory_url: str) -> None:
    session = f"agent-{namespace}"
    run_script("lc_proc_agent.py", session, "turn1")
    shown = _last_json(run_script("lc_proc_agent.py", session, "show").stdout)["history"]
    assert [m[0] for m in shown] == ["human", "ai", "tool", "ai"]
    assert shown[1][2][0]["name"] == "remember"
    assert shown[1][2][0]["args"] == {"fact": "likes tea"}
    assert shown[2][1] == "stored: likes tea"
    seen = _last_json(run_script("lc_proc_agent.py", session, "turn2").stdout)["seen"]
    assert [m[1] for m in seen] == [
        "I like tea.",
        "",
        "stored: likes tea",
        "Noted: tea.",
        "What do I like?",
    ]
    final = BotWireChatHistory(session, url=memory_url).messages
    assert [m.content for m in final][-1] == "You like tea."
    assert len(final) == 6
