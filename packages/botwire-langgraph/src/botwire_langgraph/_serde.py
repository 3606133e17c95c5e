"""How the saver puts LangGraph objects into JSON values.

Two encodings, both readable forever (data written by older versions keeps loading):

* serde pairs ``[type, base64 text]``: the serializer's ``(type, bytes)`` output, for anything
  JSON cannot hold exactly. Base64 inflates the bytes by 4/3, so it is the fallback only.
* plain JSON (since the layout of issue 22): a channel value or pending write that is a JSON
  primitive is stored as ``[value]`` (a one-element list, never confused with a two-element
  pair); a checkpoint body or metadata dict that JSON holds exactly is stored as that dict
  (a pair is a list, so the two never collide).

The plain-JSON forms are used only with LangGraph's default ``JsonPlusSerializer`` (exactly
that class: see :func:`plain`), whose bytes hold these values readably anyway. Any other serde
(an ``EncryptedSerializer``, a subclass, a custom one) sees every value LangGraph hands the
saver, as it does in ``InMemorySaver``: what it writes is the pair, and reading takes both forms.

A checkpoint record's fields and a pending-writes item are then *packed*: their JSON, deflated
(zlib) and base64-encoded, as ``{"z": text}`` — most of a record is channel names and version
strings, which deflate 3-4x, and PostgreSQL compresses only values over ~2 KB itself.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = [
    "deflate",
    "dump",
    "dump_doc",
    "dump_value",
    "load",
    "load_doc",
    "load_value",
    "pack",
    "pack_sized",
    "plain",
    "unpack",
]

#: A string channel value longer than this goes to a blob (stored once per version) instead of
#: being copied into every checkpoint record that holds it.
INLINE_MAX_CHARS = 1024
_SAFE_INT = 2**53  # JSON numbers beyond this lose precision in some decoders


def dump(serde: SerializerProtocol, obj: Any) -> list[str]:
    """Serialize ``obj`` with the saver's serde into a JSON-safe pair."""
    type_, data = serde.dumps_typed(obj)
    return [type_, base64.b64encode(data).decode("ascii")]


def load(serde: SerializerProtocol, pair: list[str]) -> Any:
    """Inverse of :func:`dump`."""
    return serde.loads_typed((pair[0], base64.b64decode(pair[1])))


def _primitive(obj: Any) -> bool:
    """True when JSON gives back exactly ``obj`` (same type: no subclasses such as enums)."""
    t = type(obj)
    if obj is None or t is bool or t is str:
        return True
    if t is int:
        return bool(-_SAFE_INT < obj < _SAFE_INT)
    return t is float and math.isfinite(obj)


def _exact(obj: Any) -> bool:
    """True when ``obj`` survives a JSON round trip unchanged (dicts with str keys, lists,
    primitives; tuples, sets, bytes, subclasses and the like do not)."""
    t = type(obj)
    if t is dict:
        return all(type(k) is str and _exact(v) for k, v in obj.items())
    if t is list:
        return all(_exact(v) for v in obj)
    return _primitive(obj)


def plain(serde: SerializerProtocol) -> bool:
    """Whether values JSON holds exactly may be stored as plain JSON: only for LangGraph's own
    ``JsonPlusSerializer``, whose output keeps them readable too. A subclass or any other serde
    may encrypt, sign or transform what it is given, so it gets every value. Checked per call,
    not once: LangGraph's ``with_allowlist`` clones a saver with another serde."""
    return type(serde) is JsonPlusSerializer


def inline_value(obj: Any) -> bool:
    """Whether a channel value is small and plain enough to live inside the checkpoint record
    (as LangGraph's ``PostgresSaver`` inlines primitive values), encoded by :func:`dump_value`."""
    return _primitive(obj) and (type(obj) is not str or len(obj) <= INLINE_MAX_CHARS)


def dump_value(serde: SerializerProtocol, obj: Any) -> list[Any]:
    """A value as ``[obj]`` when JSON holds it exactly and the serde is :func:`plain`, else as
    a serde pair."""
    return [obj] if _primitive(obj) and plain(serde) else dump(serde, obj)


def load_value(serde: SerializerProtocol, enc: list[Any]) -> Any:
    """Inverse of :func:`dump_value` (and of :func:`dump`)."""
    return enc[0] if len(enc) == 1 else load(serde, enc)


def dump_doc(serde: SerializerProtocol, doc: dict[str, Any]) -> dict[str, Any] | list[str]:
    """A checkpoint body or metadata dict: itself when JSON holds it exactly and the serde is
    :func:`plain`, else a pair."""
    return doc if plain(serde) and _exact(doc) else dump(serde, doc)


def load_doc(serde: SerializerProtocol, enc: dict[str, Any] | list[str]) -> Any:
    """Inverse of :func:`dump_doc`; a fresh dict either way (callers may modify it)."""
    if isinstance(enc, dict):
        return _copy(enc)
    return load(serde, enc)


def _copy(obj: Any) -> Any:
    if type(obj) is dict:
        return {k: _copy(v) for k, v in obj.items()}
    if type(obj) is list:
        return [_copy(v) for v in obj]
    return obj


_PACK_MIN = 96  # JSON shorter than this is stored as it is (deflate would not pay)


def pack(obj: dict[str, Any]) -> dict[str, Any]:
    """``{"z": base64(deflate(JSON))}`` of a JSON-safe dict, or the dict itself when that is
    not smaller (``unpack`` tells the two apart: a packed dict has exactly the key ``"z"``)."""
    return pack_sized(obj)[0]


def pack_sized(obj: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """:func:`pack`, and the size in bytes of the JSON of what it returns."""
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    if len(raw) < _PACK_MIN or list(obj) == ["z"]:
        return obj, len(raw)
    text = base64.b64encode(deflate(raw)).decode("ascii")
    return ({"z": text}, len(text) + 8) if len(text) + 8 < len(raw) else (obj, len(raw))


def deflate(raw: bytes) -> bytes:
    """``zlib.compress(raw, 6)`` with a window no larger than ``raw`` needs: the same stream
    format (``zlib.decompress`` reads it), about the same size, but zlib's setup of its
    default 32 KiB window and tables, which cost more than compressing a small record (28
    against 5 µs for 300 bytes), is skipped."""
    # zlib matches at most 2**bits - 262 bytes back (its look-ahead): the window must cover
    # raw plus that, else a 349-byte record came out 28% larger than zlib.compress's
    bits = max(9, min(15, (len(raw) + 260).bit_length()))
    z = zlib.compressobj(6, zlib.DEFLATED, bits, max(1, min(8, bits - 7)))
    return z.compress(raw) + z.flush()


def unpack(obj: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`pack` (an unpacked dict is returned as it is)."""
    if len(obj) == 1 and "z" in obj and isinstance(obj["z"], str):
        out: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(obj["z"])))
        return out
    return obj
