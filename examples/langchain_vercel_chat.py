"""LangChain chat on a Vercel Python function, with persistent history per session.

Every request may land on a fresh instance, so the conversation lives in botwire, not
in the function's memory. ``RunnableWithMessageHistory`` loads the session's history
before the model runs and appends the new turn (one server-side append) afterwards.

Deploy as ``api/chat.py`` with ``botwire[langchain]`` and ``langchain-openai`` in
``requirements.txt`` and set ``BOTWIRE_URL`` (+ ``BOTWIRE_TOKEN``) to your botwire
server and ``OPENAI_API_KEY``. Then::

    curl -X POST https://<app>.vercel.app/api/chat \
         -d '{"session_id": "42", "message": "Hi, I am Ada"}'

Run locally (``BOTWIRE_EXAMPLE_FAKE_MODEL=1`` uses a scripted model, no network)::

    BOTWIRE_EXAMPLE_FAKE_MODEL=1 python examples/langchain_vercel_chat.py 42 "Hi, I am Ada"
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from http.server import BaseHTTPRequestHandler
from itertools import cycle
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from botwire import BotWireChatHistory

# RunnableWithMessageHistory is deprecated in favour of LangGraph persistence
# (see botwire-langgraph); it still works and is the shape most chat apps use.
warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory is deprecated.*")


def make_model() -> BaseChatModel:
    """The chat model: OpenAI in production, a scripted fake for local runs and tests."""
    if os.environ.get("BOTWIRE_EXAMPLE_FAKE_MODEL"):
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

        return GenericFakeChatModel(messages=cycle(["Nice to meet you!", "You told me."]))
    from langchain_openai import ChatOpenAI  # pip install langchain-openai

    return ChatOpenAI(model="gpt-4o-mini")


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant. Keep answers short."),
        MessagesPlaceholder("history"),
        ("human", "{message}"),
    ]
)

# Built once per instance and reused by warm invocations.
chat_with_history = RunnableWithMessageHistory(
    prompt | make_model(),
    # One history per session; keep the last 100 messages; forget idle chats after 30 days.
    lambda session_id: BotWireChatHistory(
        session_id=f"chat-{session_id}", max_messages=100, ttl=30 * 24 * 3600
    ),
    input_messages_key="message",
    history_messages_key="history",
)


def chat(session_id: str, message: str) -> dict[str, Any]:
    """Answer ``message`` in the context of the session's earlier turns."""
    answer = chat_with_history.invoke(
        {"message": message}, config={"configurable": {"session_id": session_id}}
    )
    history = BotWireChatHistory(session_id=f"chat-{session_id}")
    return {"response": answer.content, "messages_in_history": len(history.messages)}


class handler(BaseHTTPRequestHandler):
    """Vercel's Python runtime entry point: POST {"session_id", "message"}."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        result = chat(str(body["session_id"]), str(body["message"]))
        payload = json.dumps(result).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    print(json.dumps(chat(sys.argv[1], sys.argv[2])))
