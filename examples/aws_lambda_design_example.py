"""DESIGN §0's AWS Lambda example, exactly as the original product published it.

It reads the whole history and writes it back with ``set`` — correct for one invocation at a
time. For concurrent invocations of one user use ``memory.append("chat_history", turn)``, which
never loses a message (see examples/aws_lambda/).
"""

from __future__ import annotations

from typing import Any

from botwire import Memory


def process_message(message: str, chat_history: list[Any], preferences: dict[str, Any]) -> str:
    """Stands in for the LLM call."""
    return f"turn {len(chat_history) + 1}: you said {message!r}"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    memory = Memory(f"user-{event['user_id']}")
    chat_history = memory.get("chat_history") or []
    user_preferences = memory.get("preferences") or {}
    response = process_message(event["message"], chat_history, user_preferences)
    chat_history.append(
        {"user": event["message"], "assistant": response, "timestamp": context.aws_request_id}
    )
    memory.set("chat_history", chat_history)
    memory.set("last_interaction", {"timestamp": "2024-01-15"})
    return {"response": response}
