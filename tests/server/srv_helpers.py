"""Helpers of the server suite (raw HTTP, no botwire client)."""

from __future__ import annotations

from botwire._wire import key_path

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def key_url(ns: str, key: str) -> str:
    """``/v1/namespaces/{ns}/keys/{percent-encoded key}`` as the client sends it."""
    return key_path(ns, key)
