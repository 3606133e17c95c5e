"""A chat agent on AWS Lambda whose memory survives cold starts (DESIGN §0, made correct).

Each user has a namespace ``user-<id>`` holding:

- ``chat_history``: a list of turns, grown with an atomic server-side ``append`` (capped at
  ``MAX_TURNS``): two concurrent invocations for one user both land, none is lost, and a turn
  costs the same however long the history is;
- ``preferences``: a dict, changed with ``update`` (compare-and-set, retried on conflict);
- ``last_interaction``: when the user last wrote, set in the same atomic batch as the append.

``reply`` stands in for the LLM: swap in your model call. Configure with ``BOTWIRE_URL`` (your
botwire server) and ``BOTWIRE_TOKEN``; ``pip install botwire-core`` is the only dependency.

Event: ``{"user_id": "42", "message": "hello"}`` → ``{"response": "..."}``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from botwire import Memory

MAX_TURNS = 200  # the history keeps the newest 200 turns
CONTEXT_TURNS = 20  # what the model sees: the last 20 turns, read with one `tail`

_CALL_ME = re.compile(r"^\s*call me\s+(?P<name>[\w .'-]{1,40}?)\s*[.!]?\s*$", re.IGNORECASE)


def reply(message: str, recent: list[dict[str, Any]], preferences: dict[str, Any]) -> str:
    """A scripted stand-in for the LLM: deterministic, and it shows what it remembers."""
    name = preferences.get("name", "there")
    if not recent:
        return f"Hello {name}! This is our first conversation."
    first = recent[0]["user"]
    return (
        f"Hi {name}, noted: {message!r}. We have talked {len(recent)} time(s) before; "
        f"the earliest message I still see is {first!r}."
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one message with the user's history and preferences; remember the turn."""
    user_id = str(event["user_id"])
    message = str(event["message"])
    # A Memory per invocation is cheap: every Memory with the same settings shares one
    # keep-alive connection, which a warm container reuses. Don't close it: closing the
    # last handle would close that connection and the next invocation would reconnect.
    memory = Memory(f"user-{user_id}")

    match = _CALL_ME.match(message)
    if match:  # a preference: read-modify-write with compare-and-set, never a blind overwrite
        name = match.group("name")
        preferences = memory.update("preferences", lambda p: {**(p or {}), "name": name})
    else:
        preferences = memory.get("preferences") or {}
    recent = memory.tail("chat_history", CONTEXT_TURNS)  # the last turns, not the whole list

    response = reply(message, recent, preferences)

    turn = {
        "user": message,
        "assistant": response,
        "request_id": getattr(context, "aws_request_id", None),
        "at": time.time(),
    }
    # One round trip, all or nothing: append the turn (never lost, however many invocations
    # run at once) and stamp the interaction.
    with memory.atomic() as tx:
        tx.append("chat_history", turn, max_len=MAX_TURNS)
        tx.set("last_interaction", {"at": turn["at"], "request_id": turn["request_id"]})
    return {"response": response}
