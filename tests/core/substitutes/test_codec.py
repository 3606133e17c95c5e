"""``botwire._codec`` against :mod:`json`, the module it replaces (docs/design.md, "Substitutes").

Both of the codec's paths are checked in this process: the fast one on ``_json`` and the json
fallback. ``test_fallback_job.py`` runs this module again in a subprocess with the fallback
forced (``BOTWIRE_CODEC=stdlib``) and ``_json`` blocked, so json's pure-Python code runs too.

The documented differences, asserted below: NaN/Infinity are refused both ways (json writes
and reads them), and decode errors are ``ValueError`` (json's ``JSONDecodeError`` subclasses it).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botwire import NotSerializable, _codec

Codec = tuple[Callable[[Any], str], Callable[[str], Any]]

# The accelerated path needs CPython's _json; the fallback job blocks it on purpose.
PATHS = ["stdlib"] if os.environ.get("BOTWIRE_TEST_NO_JSON_ACCEL") else ["accelerated", "stdlib"]


@pytest.fixture(scope="module", params=PATHS)
def codec(request: pytest.FixtureRequest) -> Codec:
    build = _codec._accelerated if request.param == "accelerated" else _codec._stdlib
    return build()


def ref_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _refuse(name: str) -> Any:
    raise ValueError(name)


def ref_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse)


def same(a: Any, b: Any) -> bool:
    """Equal with exact types: 1, 1.0 and True differ, and so do 0.0 and -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a.hex() == b.hex()
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(fn: Callable[[Any], Any], arg: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(arg)
    except ValueError:
        return "ValueError", None


# Text without lone surrogates (UTF-8 encodable) and with them, both as json sees them.
texts = st.text(st.characters(codec="utf-8"), max_size=20)
any_texts = st.text(st.characters(), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**4299), max_value=10**4299)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 2.0**53 + 1])
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)
# JSON texts as other writers lay them out: indents, spaces, \u escapes for everything.
layouts = st.fixed_dictionaries(
    {
        "ensure_ascii": st.booleans(),
        "indent": st.none() | st.integers(0, 3) | st.just("\t"),
        "separators": st.sampled_from([None, (",", ":"), (" , ", " : "), (",\n", ":\t")]),
        "sort_keys": st.booleans(),
    }
)
# Near-JSON garbage: JSON's own alphabet, so most strings are almost valid.
near_json = st.text(
    st.sampled_from(list('[]{}",:0123456789.eE+- \t\n\r\\/ubfnrtaulsNIy\x00\x0b\u00e9\ud800')),
    max_size=24,
)


@settings(max_examples=120, deadline=None)
@given(value=values)
def test_every_json_value_is_written_as_json_writes_it_and_read_back_exactly(
    codec: Codec, value: Any
) -> None:
    dumps, decode = codec
    text = dumps(value)
    assert text == ref_dumps(value)
    assert same(decode(text), ref_loads(text))
    assert same(decode(text), value)


@settings(max_examples=80, deadline=None)
@given(value=values, layout=layouts)
def test_json_text_from_any_writer_reads_as_json_reads_it(
    codec: Codec, value: Any, layout: dict[str, Any]
) -> None:
    text = json.dumps(value, **layout)
    assert same(codec[1](text), ref_loads(text))
    padded = " \n\t" + text + "\r\n "
    assert same(codec[1](padded), ref_loads(padded))


@settings(max_examples=500, deadline=None)
@given(text=near_json)
def test_any_text_is_accepted_or_refused_exactly_as_json_does(codec: Codec, text: str) -> None:
    """The one difference: NaN/Infinity, refused here (``ref_loads`` refuses them too)."""
    mine, ref = outcome(codec[1], text), outcome(ref_loads, text)
    assert mine[0] == ref[0], (text, mine, ref)
    assert same(mine[1], ref[1])


@settings(max_examples=200, deadline=None)
@given(text=any_texts)
def test_strings_with_lone_surrogates_match_json_and_encode_refuses_them(
    codec: Codec, text: str
) -> None:
    """``dumps`` writes what json writes (a lone surrogate kept raw); reading json's escaped
    form gives the same str back. ``encode`` (the client's gate) refuses what is not UTF-8."""
    dumps, decode = codec
    assert dumps([text]) == ref_dumps([text])
    escaped = json.dumps(text)  # ensure_ascii: surrogates as \udxxx escapes
    assert decode(escaped) == ref_loads(escaped) == text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(NotSerializable, match=r"key 'k' in namespace 'ns'.*lone surrogate"):
            _codec.encode([text], namespace="ns", key="k")
    else:
        assert _codec.encode([text], namespace="ns", key="k") == ref_dumps([text])


@pytest.mark.parametrize(
    "escaped", ['"\\ud83d\\ude00"', '"\\ud800"', '"\\udfff\\ud800"', '"\\ud800x"', '"\\u00e9"']
)
def test_surrogate_escapes_decode_as_json_decodes_them(codec: Codec, escaped: str) -> None:
    assert codec[1](escaped) == ref_loads(escaped)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, {"x": math.nan}]])
def test_nan_and_infinity_are_refused_both_ways(codec: Codec, value: Any) -> None:
    """Documented difference: json writes NaN/Infinity by default; botwire stores JSON only."""
    dumps, decode = codec
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(value)
    text = json.dumps(value)  # json's non-standard NaN / Infinity tokens
    with pytest.raises(ValueError, match="is not JSON"):
        decode(text)
    with pytest.raises(NotSerializable, match=r"key 'k' in namespace 'ns'.*NaN or Infinity"):
        _codec.encode(value, namespace="ns", key="k")


def test_decode_errors_are_value_errors_where_json_raises_its_subclass(codec: Codec) -> None:
    for text in ["", "   ", "[1,]", "1 2", "\ufeff1", "01", '{"a" 1}', "[1]\x00"]:
        with pytest.raises(ValueError, match=r"Expecting|Extra data|char"):
            codec[1](text)
        with pytest.raises(json.JSONDecodeError):
            ref_loads(text)


def test_keys_tuples_and_subclasses_are_written_as_json_writes_them(codec: Codec) -> None:
    class S(str):
        pass

    class F(float):
        def __repr__(self) -> str:  # json ignores overridden reprs: float.__repr__ is used
            return "not-a-number"

    value = {1: (1, 2), False: [S("s"), F(1.5)], None: 0, 2.5: {}, S("k"): ()}
    assert codec[0](value) == ref_dumps(value)


def test_an_int_beyond_the_digit_limit_is_named_as_such() -> None:
    """Bug fixed: an int with more than ``sys.get_int_max_str_digits()`` digits was reported as
    "a float NaN or Infinity" (both are ValueError inside json)."""
    huge = 10 ** (sys.get_int_max_str_digits() + 1)
    with pytest.raises(ValueError, match="digits"):
        ref_dumps(huge)
    with pytest.raises(NotSerializable) as caught:
        _codec.encode({"n": [huge]}, namespace="ns", key="k")
    message = str(caught.value)
    assert "key 'k' in namespace 'ns'" in message and "int_max_str_digits" in message
    assert "NaN" not in message and caught.value.key == "k"
    text = "1" * (sys.get_int_max_str_digits() + 1)  # reading one: json's ValueError too
    with pytest.raises(ValueError, match="digits"):
        _codec.decode(text)


def test_a_value_nested_beyond_the_recursion_limit_is_not_serializable() -> None:
    """Bug fixed: a deeply nested value escaped ``encode`` as a bare ``RecursionError``, naming
    neither the key nor the fix."""
    deep: Any = "leaf"
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    with pytest.raises(RecursionError):
        ref_dumps(deep)
    with pytest.raises(NotSerializable, match=r"key 'k' in namespace 'ns' is nested too deep"):
        _codec.encode(deep, namespace="ns", key="k")
    ok: Any = "leaf"
    for _ in range(200):  # ordinary nesting stays fine
        ok = {"a": ok}
    assert _codec.decode(_codec.encode(ok, namespace="ns", key="k")) == ok


def test_circular_references_are_named() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(NotSerializable, match="circular reference"):
        _codec.encode({"x": loop}, namespace="ns", key="k")


def test_the_live_path_is_the_one_the_environment_asks_for() -> None:
    """``BOTWIRE_CODEC=stdlib`` forces the fallback; without it CPython gets the fast path."""
    forced = os.environ.get(_codec.CODEC_ENV) == "stdlib"
    blocked = bool(os.environ.get("BOTWIRE_TEST_NO_JSON_ACCEL"))
    expected = "stdlib" if forced or blocked else "accelerated"
    assert expected == _codec.PATH
    if blocked:  # json itself runs its pure-Python scanner and encoder
        import json.decoder
        import json.encoder

        assert json.decoder.c_scanstring is None and json.encoder.c_make_encoder is None
