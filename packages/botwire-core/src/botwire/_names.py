"""The namespace and key rules of DESIGN §2, checked before any I/O."""

from __future__ import annotations

from ._errors import InvalidKey, InvalidNamespace

__all__ = ["MAX_KEY_BYTES", "check_key", "check_namespace"]

MAX_KEY_BYTES = 1024
_NS_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:@")


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is legal, else raise :class:`InvalidNamespace` saying why."""
    if not isinstance(namespace, str):
        raise InvalidNamespace(
            f"botwire: namespace must be a str, got {type(namespace).__name__}; "
            "pass a name such as 'user-42'."
        )
    if not 1 <= len(namespace) <= 128:
        raise InvalidNamespace(
            f"botwire: namespace {namespace[:40]!r} has {len(namespace)} characters; "
            "namespaces take 1 to 128. Use a shorter name (for example a hash of the long part).",
            namespace=namespace[:128] or None,
        )
    if not _NS_CHARS.issuperset(namespace) or namespace in (".", ".."):
        bad = sorted({c for c in namespace if c not in _NS_CHARS}) or [namespace]
        raise InvalidNamespace(
            f"botwire: namespace {namespace!r} contains {', '.join(map(repr, bad))}; "
            "namespaces use only A-Z a-z 0-9 . _ - : @ (and are not '.' or '..'). "
            "Put free-form text in keys, which accept any characters.",
            namespace=namespace,
        )
    return namespace


def check_key(key: object, namespace: str | None = None) -> str:
    """Return ``key`` if it is legal, else raise :class:`InvalidKey` saying why."""
    if not isinstance(key, str):
        raise InvalidKey(
            f"botwire: key must be a str, got {type(key).__name__} in namespace {namespace!r}; "
            "convert it with str() first.",
            namespace=namespace,
        )
    if not key:
        raise InvalidKey(
            f"botwire: empty key in namespace {namespace!r}; keys take 1 to 1024 UTF-8 bytes.",
            namespace=namespace,
        )
    if "\x00" in key:
        raise InvalidKey(
            f"botwire: key {key[:60]!r} in namespace {namespace!r} contains a NUL character, "
            "which keys may not hold; remove or replace it.",
            namespace=namespace,
            key=key,
        )
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(
            f"botwire: key {key[:60]!r} in namespace {namespace!r} is not valid UTF-8 "
            "(it contains a lone surrogate); keys must be encodable as UTF-8.",
            namespace=namespace,
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"botwire: key {key[:40]!r}... in namespace {namespace!r} is {size} bytes of UTF-8; "
            f"keys take at most {MAX_KEY_BYTES}. Use a shorter key (for example a hash).",
            namespace=namespace,
            key=key[:256],
        )
    return key
