"""Strict JSON: what may be stored, and how it is written and read back.

Values are encoded once, in the client, before any I/O: NaN, Infinity and anything that is not a
JSON value are refused there with :class:`NotSerializable`, naming the key and the type.
"""

from __future__ import annotations

import json

from ._errors import NotSerializable

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from typing import Any

__all__ = ["decode", "dumps", "encode"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_dumps = _ENCODER.encode


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
decode = _DECODER.decode


def dumps(value: Any) -> str:
    """Compact strict JSON text; raises ``ValueError``/``TypeError`` like :func:`json.dumps`."""
    return _dumps(value)


def encode(value: Any, *, namespace: str | None = None, key: str | None = None) -> str:
    """Compact JSON text of ``value``, or :class:`NotSerializable` naming the culprit."""
    try:
        text = _dumps(value)
        text.encode("utf-8")  # a lone surrogate in a str is not UTF-8: refuse it here, before I/O
        return text
    except UnicodeEncodeError:
        raise NotSerializable(
            f"botwire: the value for key {key!r} in namespace {namespace!r} contains a string "
            "with a lone surrogate (e.g. '\\ud800'), which is not valid UTF-8; clean the text "
            "first (for example s.encode('utf-8', 'replace').decode()).",
            namespace=namespace,
            key=key,
        ) from None
    except ValueError as exc:  # NaN / Infinity, or a circular reference
        what = "a circular reference" if "ircular" in str(exc) else "a float NaN or Infinity"
        raise NotSerializable(
            f"botwire: the value for key {key!r} in namespace {namespace!r} contains {what}, "
            "which JSON cannot hold; store None or a string instead.",
            namespace=namespace,
            key=key,
        ) from None
    except TypeError:
        culprit = _find_unserializable(value) or "value of an unsupported type"
        raise NotSerializable(
            f"botwire: the value for key {key!r} in namespace {namespace!r} contains a "
            f"{culprit}, which is not JSON; botwire stores JSON values only (dict with str keys, "
            "list, str, int, float, bool, None). Convert it first, e.g. a set to a list or a "
            "datetime to isoformat().",
            namespace=namespace,
            key=key,
        ) from None


def _find_unserializable(value: Any, depth: int = 0) -> str:
    """Name the first object json refuses (only walked after a failure, so it costs nothing)."""
    if depth > 200:
        return "structure nested too deeply"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                return f"dict key of type {type(k).__name__}"
            found = _find_unserializable(v, depth + 1)
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple)):
        for v in value:
            found = _find_unserializable(v, depth + 1)
            if found:
                return found
        return ""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return ""
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
