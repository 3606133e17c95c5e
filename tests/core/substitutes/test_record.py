"""``botwire._record.record`` against :mod:`dataclasses`, the module it replaces.

Every record is checked beside its twin ``@dataclass(frozen=..., slots=True)`` class: the same
constructor (positional, keyword, defaults, factories, the same TypeErrors), ``repr``, ``==``,
``hash``, immutability, ``__match_args__``, pickling and copying, and ``dataclasses.fields`` /
``replace`` / ``asdict`` / ``astuple`` on the record itself. Generated field lists (hypothesis)
and the records botwire really declares.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botwire._record import field, record
from botwire._types import Entry, KeyInfo, KeyPage, Limits, Op, Usage
from botwire.backends._http import Call, Target


# -- module-level twins (pickle needs importable classes) --------------------------------------
@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class PointDC:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)


@record(frozen=False)
class Box:
    item: Any
    count: int = 1


@dataclasses.dataclass(slots=True)
class BoxDC:
    item: Any
    count: int = 1


def _as_record(r: Any) -> str:
    """A record's repr with the twin's class name, so both reprs compare."""
    return repr(r).replace(type(r).__qualname__, "T", 1)


def _twins(spec: list[tuple[str, str]], frozen: bool) -> tuple[type, type]:
    """A record and a dataclass with the same fields: kind is "req", "default" or "factory"."""
    rec_ns: dict[str, Any] = {"__annotations__": {}}
    dc_ns: dict[str, Any] = {"__annotations__": {}}
    for i, (name, kind) in enumerate(spec):
        rec_ns["__annotations__"][name] = "Any"
        dc_ns["__annotations__"][name] = "Any"
        if kind == "default":
            rec_ns[name] = dc_ns[name] = (i, name)
        elif kind == "factory":
            rec_ns[name] = field(default_factory=list)
            dc_ns[name] = dataclasses.field(default_factory=list)
    rec = record(type("T", (), rec_ns), frozen=frozen)
    dc = dataclasses.dataclass(frozen=frozen, slots=True)(type("T", (), dc_ns))
    return rec, dc


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except TypeError:
        return "TypeError", None


names = st.lists(
    st.sampled_from(["a", "b", "c", "d", "e", "key", "value"]), unique=True, max_size=5
)
field_specs = names.flatmap(
    lambda ns: st.lists(
        st.sampled_from(["req", "default", "factory"]), min_size=len(ns), max_size=len(ns)
    ).map(lambda kinds: list(zip(ns, sorted(kinds, key=lambda k: k != "req"), strict=True)))
)
arguments = st.tuples(
    st.lists(st.integers(), max_size=6),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", "key", "zz"]), st.integers()),
)


@settings(max_examples=150, deadline=None)
@given(spec=field_specs, frozen=st.booleans(), args=arguments)
def test_a_record_behaves_as_the_dataclass_with_the_same_fields(
    spec: list[tuple[str, str]], frozen: bool, args: tuple[list[int], dict[str, int]]
) -> None:
    rec, dc = _twins(spec, frozen)
    positional, keywords = args
    r, d = outcome(rec, *positional, **keywords), outcome(dc, *positional, **keywords)
    assert r[0] == d[0], (spec, args, r, d)  # both build it, or both refuse (TypeError)
    assert rec.__match_args__ == dc.__match_args__ == tuple(n for n, _ in spec)
    if r[0] != "ok":
        return
    a, b = r[1], d[1]
    assert repr(a) == repr(b)
    assert a == rec(*positional, **keywords) and a != b  # equal to its own class only
    assert (a == b) is (b == a) is False
    names_ = [n for n, _ in spec]
    assert [getattr(a, n) for n in names_] == [getattr(b, n) for n in names_]
    assert dataclasses.is_dataclass(a) and dataclasses.astuple(a) == dataclasses.astuple(b)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert [(f.name, f.default) for f in dataclasses.fields(a)] == [
        (f.name, f.default) for f in dataclasses.fields(b)
    ]
    assert not hasattr(a, "__dict__") and not hasattr(b, "__dict__")  # slotted both
    if frozen:
        assert outcome(hash, a) == outcome(hash, b)  # the tuple of field values (or unhashable)
        for name in names_:
            with pytest.raises(AttributeError):
                setattr(a, name, 1)
            with pytest.raises(AttributeError):
                setattr(b, name, 1)
        # A name that is no field: AttributeError here; a slotted frozen dataclass raises a
        # confusing TypeError from super() on 3.11 (a documented difference, in our favour).
        with pytest.raises(AttributeError):
            a.other = 1
    else:
        assert type(a).__hash__ is None and type(b).__hash__ is None
        for name in names_:
            setattr(a, name, "changed")
            setattr(b, name, "changed")
        assert repr(a) == repr(b)
        with pytest.raises(AttributeError):
            a.other = 1  # slots: no new attributes
    if names_:
        changed = dataclasses.replace(a, **{names_[0]: "r"})
        assert type(changed) is rec and getattr(changed, names_[0]) == "r"
        assert repr(changed) == repr(dataclasses.replace(b, **{names_[0]: "r"}))


@pytest.mark.parametrize(("rec", "dc"), [(Point, PointDC), (Box, BoxDC)])
def test_pickle_copy_and_match_as_the_dataclass(rec: type, dc: type) -> None:
    a, b = rec(3, 4), dc(3, 4)
    for transform in (lambda o: pickle.loads(pickle.dumps(o)), copy.copy, copy.deepcopy):
        ta, tb = transform(a), transform(b)
        assert type(ta) is rec and ta == a and ta is not a
        assert _as_record(ta) == repr(tb).replace(dc.__qualname__, "T", 1)
    # Protocol 0 too (a mutable slotted dataclass cannot do that one on 3.11: no __getstate__)
    assert pickle.loads(pickle.dumps(a, protocol=0)) == a
    match a:
        case rec(x, y):  # type: ignore[misc]
            assert (x, y) == (3, 4)
        case _:
            pytest.fail("positional pattern did not match")


def test_factories_make_a_new_default_per_instance() -> None:
    one, two = Point(1), Point(2)
    one.tags.append("a")
    assert two.tags == [] and PointDC(2).tags == []


def test_frozen_errors_say_which_field() -> None:
    p = Point(1)
    with pytest.raises(AttributeError, match=r"'x'.*frozen"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match=r"'y'.*frozen"):
        del p.y  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PointDC(1).x = 2  # type: ignore[misc]


def test_a_required_field_after_a_default_is_refused_at_class_creation_like_dataclasses() -> None:
    """Bug fixed: ``@record`` accepted it, so ``T(1)`` silently bound the positional argument
    to the defaulted field and then complained the other was missing."""
    body = {"__annotations__": {"a": "int", "b": "int"}, "a": 0}
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        dataclasses.dataclass(type("T", (), dict(body)))
    with pytest.raises(TypeError, match=r"'b'.*follows.*default.*'a'"):
        record(type("T", (), dict(body)))


def test_subclassing_a_record_is_refused_where_dataclasses_would_inherit_fields() -> None:
    """Bug fixed: ``@record class B(A)`` silently dropped A's fields (``B(1).x`` raised
    AttributeError, ``repr`` too). Records are flat; the error says so and how to fix it."""

    @dataclasses.dataclass(frozen=True)
    class BaseDC:
        x: int

    @dataclasses.dataclass(frozen=True)
    class SubDC(BaseDC):
        y: int = 0

    assert SubDC(1).x == 1  # what a reader of "like dataclasses" expects
    with pytest.raises(TypeError, match=r"Sub.*do not inherit fields.*Point.*repeat its fields"):

        @record
        class Sub(Point):
            z: int = 0


def test_a_mutable_record_holding_itself_has_a_finite_repr_like_dataclasses() -> None:
    """Bug fixed: ``box.item = box`` made ``repr(box)`` a RecursionError."""
    a, b = Box(None), BoxDC(None)
    a.item, b.item = a, b
    assert _as_record(a) == repr(b).replace("BoxDC", "T", 1) == "T(item=..., count=1)"
    a.item, b.item = [a, {"k": a}], [b, {"k": b}]
    assert _as_record(a) == repr(b).replace("BoxDC", "T", 1)


REAL = [
    Entry("k", {"v": [1]}, 2, 1.0, 2.0, None),
    KeyInfo("k", 1, 10, 2.0),
    KeyPage([KeyInfo("k", 1, 10, 2.0)], None),
    Limits(1, 2, 3, 4),
    Usage("ns", 1, 2, 3, 4.0),
    Op("set", "k", "1"),
    Target(True, "example.com", 443, "/p"),
    Call("GET", "/v1/x", {"Host": "h"}, None, "get"),
]


@pytest.mark.parametrize("value", REAL, ids=lambda v: type(v).__name__)
def test_botwires_records_equal_their_dataclass_twins(value: Any) -> None:
    """Each real record against ``make_dataclass`` with its fields and defaults."""
    cls = type(value)
    fields = dataclasses.fields(value)
    frozen = cls.__hash__ is not None
    twin = dataclasses.make_dataclass(
        cls.__name__,
        [(f.name, object, f) for f in (copy.copy(f) for f in fields)],
        frozen=frozen,
        slots=True,
    )
    mirror = twin(*[getattr(value, f.name) for f in fields])
    assert repr(value).replace(cls.__qualname__, "T", 1) == repr(mirror).replace(
        cls.__name__, "T", 1
    )
    assert dataclasses.asdict(value) == dataclasses.asdict(mirror)
    assert pickle.loads(pickle.dumps(value)) == value
    assert dataclasses.replace(value) == value and dataclasses.replace(value) is not value
    if frozen:  # the same hash, or unhashable both ways (a list or dict inside)
        assert outcome(hash, value) == outcome(hash, mirror)
