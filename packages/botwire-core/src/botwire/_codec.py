"""Strict JSON: what may be stored, and how it is written and read back.

Values are encoded once, in the client, before any I/O: NaN, Infinity and anything that is not a
JSON value are refused there with :class:`NotSerializable`, naming the key and the type.

A stdlib substitute (docs/design.md, "Substitutes"): the fast path drives CPython's ``_json``
directly; the fallback is :mod:`json` itself, used when ``_json`` is missing or behaves
unexpectedly, or when ``BOTWIRE_CODEC=stdlib`` is set (so tests and CI can force it; see
tests/core/substitutes/). ``PATH`` says which one this process uses.
"""

from __future__ import annotations

import os  # already imported by the interpreter's startup: free

from ._errors import InvalidArgument, NotSerializable

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["PATH", "decode", "dumps", "encode"]

CODEC_ENV = "BOTWIRE_CODEC"  # "stdlib" forces the json fallback (for tests); unset: fastest

_WS = " \t\n\r"  # JSON's whitespace


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unserializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads, as :class:`json.JSONDecoder` has them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_refuse_constant)


def _accelerated() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """Encoder and decoder built on CPython's ``_json`` directly.

    ``import json`` costs a cold start ~7 ms, nearly all of it ``re`` (and ``enum``), which the
    json package compiles at import for its pure-Python fallbacks; the C accelerator those
    fallbacks sit on needs none of it. Same behaviour as ``json.JSONEncoder(ensure_ascii=False,
    separators=(",", ":"), allow_nan=False)`` and ``json.JSONDecoder(parse_constant=refuse)``.
    """
    import _json

    make_encoder = _json.make_encoder

    def dumps(value: Any) -> str:
        # A fresh circular-reference memo per call, as json.JSONEncoder.iterencode makes one.
        chunks = make_encoder(
            {}, _unserializable, _json.encode_basestring, None, ":", ",", False, False, False
        )(value, 0)
        return "".join(chunks)

    # typeshed types the context as a make_scanner; the C scanner only reads the attributes
    # of a JSONDecoder, which _ScanContext has (no json.decoder import: cold start).
    scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]

    def decode(text: str) -> Any:
        start = len(text) - len(text.lstrip(_WS))
        try:
            value, end = scan(text, start)
        except StopIteration as exc:
            raise ValueError(f"Expecting value: char {exc.value}") from None
        if end != len(text) and text[end:].strip(_WS):
            raise ValueError(f"Extra data: char {end}")
        return value

    # Prove the fast path agrees with json's own contract on this interpreter before using it.
    sample = {"k": [1, -2.5, 1e300, None, True, False, 'é\n"', {}, []], "": 10**30}
    text = '{"k":[1,-2.5,1e+300,null,true,false,"é\\n\\"",{},[]],"":' + str(10**30) + "}"
    if dumps(sample) != text or decode(" " + text + "\n") != sample:
        raise ImportError("unexpected _json behaviour")
    return dumps, decode


def _stdlib() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    import json

    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    return encoder.encode, decoder.decode


def _choose() -> tuple[str, Callable[[Any], str], Callable[[str], Any]]:
    """The codec this process uses: ``_json`` directly unless forced or unavailable."""
    wanted = os.environ.get(CODEC_ENV, "")
    if wanted not in ("", "stdlib", "accelerated"):
        raise InvalidArgument(
            f"botwire: {CODEC_ENV}={wanted!r} is not a codec; use 'stdlib' (json's own code) "
            f"or unset {CODEC_ENV} (the fast _json path)."
        )
    if wanted != "stdlib":
        try:
            return ("accelerated", *_accelerated())
        except (ImportError, AttributeError, TypeError, ValueError):  # not CPython, or changed
            pass
    return ("stdlib", *_stdlib())


PATH, _dumps, decode = _choose()


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
    except RecursionError:  # json's nesting limit is the interpreter's recursion limit
        raise NotSerializable(
            f"botwire: the value for key {key!r} in namespace {namespace!r} is nested too "
            "deeply for JSON (lists/dicts inside each other beyond the recursion limit, "
            "~1000 levels); flatten it first, e.g. store the inner parts under their own keys.",
            namespace=namespace,
            key=key,
        ) from None
    except ValueError as exc:  # NaN / Infinity, a circular reference, or a huge int
        message = str(exc)
        if "ircular" in message:
            what, fix = "a circular reference", "store None or a string instead"
        elif "digits" in message:  # sys.get_int_max_str_digits(): 4300 by default
            what = "an int with more digits than Python converts to text (int_max_str_digits)"
            fix = "store it as a string (str(n), after sys.set_int_max_str_digits) instead"
        else:
            what, fix = "a float NaN or Infinity", "store None or a string instead"
        raise NotSerializable(
            f"botwire: the value for key {key!r} in namespace {namespace!r} contains {what}, "
            f"which JSON cannot hold; {fix}.",
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
