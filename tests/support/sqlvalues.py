"""Values a write binds, for the tests of how the event loop's writer sends them to PostgreSQL
(``test_write_literals``: as literals; ``test_write_pipeline``: as bound arguments)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: the awkward cases of each type the engine writes: quoting, escapes, placeholders, bytes
#: with NUL, int8's ends, float edge cases, booleans
TRICKY: list[Any] = [
    "",
    "plain",
    "it's",
    "back\\slash",
    "'); DROP TABLE bw_entries; --",
    "ünïcødé ✓ 😀",
    "%s %% ?",
    "new\nline\ttab",
    b"",
    b"\x00\x01\xff'\\",
    0,
    -1,
    2**62,
    -(2**63),
    1.5,
    -0.0,
    1e300,
    True,
    False,
]


def rows(*extra: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """Rows of 1-6 random values of the engine's types, and ``extra``'s."""
    return st.lists(
        st.one_of(
            st.text().filter(lambda s: "\x00" not in s),  # PostgreSQL text holds no NUL
            st.binary(),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False),
            *extra,
        ),
        min_size=1,
        max_size=6,
    )
