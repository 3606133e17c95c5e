"""``_serde.deflate`` (a small-window ``zlib`` stream, cheaper to set up) against the stdlib
call it replaces: ``zlib.decompress`` reads every stream back, and it is never much larger than
``zlib.compress(raw, 6)``."""

from __future__ import annotations

import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from botwire_langgraph._serde import deflate, pack, unpack

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=400,
)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40_000) | _json.map(lambda v: json.dumps(v).encode()))
def test_deflate_reads_back_with_zlib_and_is_about_as_small(raw: bytes) -> None:
    out = deflate(raw)
    assert zlib.decompress(out) == raw
    assert len(out) <= len(zlib.compress(raw, 6)) * 1.05 + 16


def test_window_sizes_at_their_edges() -> None:
    for n in (0, 1, 255, 256, 257, 511, 512, 513, 32_767, 32_768, 32_769, 1 << 20):
        raw = (b"botwire checkpoint " * (n // 19 + 1))[:n]
        assert zlib.decompress(deflate(raw)) == raw


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), _json, max_size=8))
def test_pack_round_trips(obj: dict[str, object]) -> None:
    assert unpack(pack(obj)) == obj or list(obj) == ["z"]
