"""JSON forms of Pydantic AI's messages, entries and records (private).

Messages go through ``ModelMessagesTypeAdapter`` (bytes as base64, as Pydantic AI does), so
images and files in a history survive the round trip.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.conversation_store import ConversationEntry, ConversationRecord
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter

__all__ = [
    "decode_entry",
    "decode_messages",
    "decode_record",
    "encode_entry",
    "encode_messages",
    "encode_record",
]

_RECORD = TypeAdapter(ConversationRecord)


def encode_messages(messages: list[ModelMessage]) -> list[Any]:
    """Plain JSON values, one per message."""
    out: list[Any] = json.loads(ModelMessagesTypeAdapter.dump_json(messages))
    return out


def decode_messages(values: list[Any]) -> list[ModelMessage]:
    return ModelMessagesTypeAdapter.validate_json(json.dumps(values))


def encode_entry(entry: ConversationEntry, ancestors: list[str]) -> dict[str, Any]:
    """An entry, plus the ids of up to N entries before it (newest first): a history of n
    messages is then read in about n/N round trips, not n."""
    return {
        "id": entry.id,
        "parent_id": entry.parent_id,
        "kind": entry.kind,
        "message": encode_messages([entry.message])[0],
        "ancestors": ancestors,
    }


def decode_entry(value: dict[str, Any]) -> ConversationEntry:
    return ConversationEntry(
        id=value["id"],
        parent_id=value["parent_id"],
        message=decode_messages([value["message"]])[0],
        kind=value.get("kind", "message"),
    )


def encode_record(record: ConversationRecord) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(_RECORD.dump_json(record))
    return out


def decode_record(value: dict[str, Any]) -> ConversationRecord:
    return _RECORD.validate_json(json.dumps(value))
