"""A small agent service for Google Cloud Run, with memory in botwire (``AsyncMemory``).

Cloud Run scales instances up, down and to zero, and any request may reach any instance, so
nothing about a user is kept in the process: each user's namespace ``user-<id>`` on a botwire
server holds the chat history (grown with an atomic ``append``) and their preferences.

Routes: ``POST /chat`` ``{"user_id", "message"}`` → ``{"response"}``;
``GET /users/{user_id}/history?last=N``; ``GET /healthz``.
``reply`` stands in for the LLM. Configure with ``BOTWIRE_URL`` and ``BOTWIRE_TOKEN``.
Run locally: ``uvicorn main:app --port 8080``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from botwire import AsyncMemory, BotWireError, Unavailable

MAX_TURNS = 200
CONTEXT_TURNS = 20
_CALL_ME = re.compile(r"^\s*call me\s+(?P<name>[\w .'-]{1,40}?)\s*[.!]?\s*$", re.IGNORECASE)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One handle for the instance's lifetime: per-request AsyncMemory objects share its
    # backend, so every request reuses one pool of keep-alive connections.
    async with AsyncMemory("agent-service") as memory:
        app.state.memory = memory
        yield


app = FastAPI(title="botwire agent on Cloud Run", lifespan=lifespan)


class ChatIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._\-:@]+$")
    message: str = Field(min_length=1, max_length=10_000)


class ChatOut(BaseModel):
    response: str


def reply(message: str, recent: list[dict[str, Any]], preferences: dict[str, Any]) -> str:
    """A scripted stand-in for the LLM that shows what it remembers."""
    name = preferences.get("name", "there")
    if not recent:
        return f"Hello {name}! This is our first conversation."
    return (
        f"Hi {name}, noted: {message!r}. We have talked {len(recent)} time(s) before; "
        f"the earliest message I still see is {recent[0]['user']!r}."
    )


def memory_for(request: Request, user_id: str) -> AsyncMemory:
    """The user's namespace, on the instance's shared backend."""
    root: AsyncMemory = request.app.state.memory
    return root.with_namespace(f"user-{user_id}")


@app.post("/chat")
async def chat(body: ChatIn, request: Request) -> ChatOut:
    async with memory_for(request, body.user_id) as memory:
        match = _CALL_ME.match(body.message)
        if match:
            name = match.group("name")
            preferences = await memory.update("preferences", lambda p: {**(p or {}), "name": name})
        else:
            preferences = await memory.get("preferences") or {}
        recent = await memory.tail("chat_history", CONTEXT_TURNS)
        response = reply(body.message, recent, preferences)
        turn = {"user": body.message, "assistant": response, "at": time.time()}
        async with memory.atomic() as tx:  # one round trip, all or nothing
            tx.append("chat_history", turn, max_len=MAX_TURNS)
            tx.set("last_interaction", {"at": turn["at"]})
    return ChatOut(response=response)


@app.get("/users/{user_id}/history")
async def history(user_id: str, request: Request, last: int = 20) -> dict[str, Any]:
    async with memory_for(request, user_id) as memory:
        return {"turns": await memory.tail("chat_history", max(1, min(last, MAX_TURNS)))}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.exception_handler(BotWireError)
async def botwire_error(request: Request, exc: BotWireError) -> JSONResponse:
    """Memory errors (a token that may not write, the server down...) as clear 500/503s."""
    status = 503 if isinstance(exc, Unavailable) else 500
    return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=status)
