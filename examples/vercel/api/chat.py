"""A LangChain chat endpoint on Vercel's Python runtime, with persistent history per session.

``POST /api/chat`` with header ``x-session-id: <id>`` and body ``{"message": "..."}`` answers
``{"response": "...", "session_id": "..."}``. Any request may land on a fresh instance, so the
conversation lives in botwire (``BotWireChatHistory``), not in the function's memory: the
history is loaded before the model runs and the new turn is saved with **one** atomic
server-side append (two concurrent requests of one session both land).

``ScriptedChatModel`` stands in for the LLM; in production use e.g.
``ChatOpenAI(model="gpt-4o-mini")`` (``pip install langchain-openai``). Configure with
``BOTWIRE_URL`` and ``BOTWIRE_TOKEN`` in the project's environment variables.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from botwire import BotWireChatHistory, BotWireError, Unavailable

MAX_MESSAGES = 100  # keep the newest 100 messages per session
IDLE_TTL = 30 * 24 * 3600  # forget a session idle for 30 days (refreshed by every turn)
SYSTEM = SystemMessage("You are a helpful assistant. Keep answers short.")


class ScriptedChatModel(BaseChatModel):
    """A deterministic stand-in for the LLM that shows what history it was given."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        said = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
        if len(said) == 1:
            text = f"Nice to meet you! You said {said[0]!r}."
        else:
            text = f"Message {len(said)} noted ({said[-1]!r}); your first one was {said[0]!r}."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


model = ScriptedChatModel()  # built once per instance, reused by warm invocations


def chat(session_id: str, message: str) -> str:
    """Answer ``message`` in the context of the session's earlier turns; save the turn."""
    history = BotWireChatHistory(
        session_id=f"chat-{session_id}", max_messages=MAX_MESSAGES, ttl=IDLE_TTL
    )
    question = HumanMessage(message)
    answer = model.invoke([SYSTEM, *history.messages, question])
    history.add_messages([question, answer])  # one atomic append for the whole turn
    return str(answer.content)


class handler(BaseHTTPRequestHandler):  # Vercel looks for this name
    """Vercel's entry point: ``POST`` with ``x-session-id`` and ``{"message": "..."}``."""

    def do_POST(self) -> None:
        session_id = (self.headers.get("x-session-id") or "").strip()
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": 'send a JSON body {"message": "..."}'})
            return
        if not session_id or not isinstance(message, str):
            self._send(400, {"error": "send an x-session-id header and a string message"})
            return
        try:
            response = chat(session_id, message)
        except BotWireError as exc:  # e.g. Forbidden: the token may not write this namespace
            self.log_error("botwire: %s: %s", type(exc).__name__, exc)
            status = 503 if isinstance(exc, Unavailable) else 500
            self._send(status, {"error": type(exc).__name__, "message": str(exc)})
            return
        self._send(200, {"response": response, "session_id": session_id})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
