"""The payload of the watch's ``NOTIFY`` (``storage._pg_listen``): namespaces, each with hints of
the keys written to it. A hint must never make a waiter miss a key under its prefix, and a
listener that predates the hints must still find every namespace in the payload."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from botwire_server.storage._pg_listen import (
    HINT_CHARS,
    MAX_HINTS,
    covers,
    hints,
    notice,
    parse,
    under,
)
from botwire_server.watch import payloads

NAMESPACES = st.text("abcXYZ019._-:@", min_size=1, max_size=20)
ANY = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
KEYS = st.text(ANY, min_size=1, max_size=90)
#: keys and prefixes of few characters, so that many keys are under many prefixes
NEAR = st.text("ab/ %", min_size=1, max_size=90)
#: keys longer than a hint, few characters: cut hints and long prefixes meet
LONG = st.text("ab", min_size=60, max_size=100)


@given(NAMESPACES, st.lists(KEYS, min_size=1, max_size=MAX_HINTS), KEYS)
def test_a_key_under_a_prefix_always_wakes_it(ns: str, keys: list[str], prefix: str) -> None:
    (named, hinted), *rest = list(parse(notice(ns, keys)))
    assert named == ns and not rest and hinted is not None
    for key in keys:
        if key.startswith(prefix):
            assert any(under(prefix, hint) for hint in hinted), (key, prefix)


@given(NAMESPACES, st.lists(NEAR, min_size=1, max_size=MAX_HINTS), st.text("ab/ %", max_size=90))
def test_a_short_prefix_is_matched_exactly(ns: str, keys: list[str], prefix: str) -> None:
    """Exact up to HINT_CHARS characters of prefix; beyond, never a miss (may wake in vain)."""
    (_, hinted), *_ = list(parse(notice(ns, keys)))
    assert hinted is not None
    woken = any(under(prefix, h) for h in hinted)
    wanted = any(k.startswith(prefix) for k in keys)
    assert woken == wanted if len(prefix) <= HINT_CHARS else woken >= wanted


@given(st.dictionaries(NAMESPACES, st.none() | st.lists(KEYS, max_size=40), max_size=30))
def test_every_namespace_is_named_to_old_and_new_listeners(
    written: dict[str, list[str] | None],
) -> None:
    units = [notice(ns, keys) for ns, keys in written.items()]
    sent = payloads(units)
    assert all(len(p.encode()) <= 7900 for p in sent)
    names = set(written)
    assert {ns for p in sent for ns, _ in parse(p)} == names
    # a listener before the hints: every token is a namespace, the plain ones among them
    assert names <= {token for p in sent for token in p.split(" ")}
    # no hints for a namespace written with unknown keys or more keys than a payload hints at
    for p in sent:
        for ns, hinted in parse(p):
            keys = written[ns]
            if hinted is not None:
                assert keys is not None and 0 < len(keys) <= MAX_HINTS


@given(NAMESPACES, st.text("ab/ %é", min_size=55, max_size=150), st.text("ab/ %é", min_size=1))
def test_a_long_key_under_a_long_prefix_wakes_it(ns: str, prefix: str, rest: str) -> None:
    """Keys and prefixes longer than a hint: the key is cut, the match must still be made."""
    (_, hinted), *_ = list(parse(notice(ns, [prefix + rest, "other"])))
    assert hinted is not None and any(under(prefix, h) for h in hinted)


@given(st.lists(NEAR | KEYS | LONG, min_size=1, max_size=60), st.lists(NEAR, max_size=20))
def test_covers_is_under_for_many_keys(keys: list[str], prefixes: list[str]) -> None:
    """The hub's matcher (sorted keys, one search per waiter) says what ``under`` says of each
    key's hint, for every waiter's prefix, the long ones included."""
    test = covers(keys)
    for prefix in [*prefixes, *(k[:n] for k in keys for n in (1, 63, 64, 65, 90))]:
        assert test(prefix) == any(under(prefix, hint) for hint in hints(keys)), prefix
