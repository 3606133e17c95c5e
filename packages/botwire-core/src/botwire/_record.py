"""``@record``: a frozen, slotted data class without importing :mod:`dataclasses`.

``import dataclasses`` pulls in ``inspect`` (and ``ast``, ``dis``, ``tokenize``...), which costs
a cold start more than the rest of the client put together (``benchmarks/run.py``, P1/P6). A
record has what our ``@dataclass(frozen=True, slots=True)`` classes used: ``__init__`` with
defaults (``field(default_factory=...)`` too), ``__repr__``, ``__eq__``, ``__hash__``,
``__match_args__``, immutability and pickling. ``dataclasses.fields``, ``replace``, ``asdict``
and ``is_dataclass`` still work: ``__dataclass_fields__`` is built on first use, through the
real :mod:`dataclasses`, from an equivalent twin class.

A stdlib substitute (docs/design.md, "Substitutes"): tests/core/substitutes/test_record.py
checks it against ``dataclasses`` side by side.

Example::

    @record
    class Point:
        x: int
        y: int = 0
"""

from __future__ import annotations

from _thread import get_ident

TYPE_CHECKING = False  # not typing's: importing typing costs a cold start ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_: object) -> Callable[[T], T]:
        return lambda f: f


__all__ = ["field", "record"]

_MISSING = object()


class _Factory:
    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is made per instance (like ``dataclasses.field``)."""
    return _Factory(default_factory)


class _LazyFields:
    """``__dataclass_fields__``, computed through :mod:`dataclasses` on first access."""

    def __get__(self, obj: object, cls: type) -> Any:
        import dataclasses

        specs: list[tuple[str, str] | tuple[str, str, Any]] = []
        # set by @record on the class it builds, so no static type declares it
        for name, default in cls.__record_defaults__:  # type: ignore[attr-defined]
            if default is _MISSING:
                specs.append((name, "object"))
            elif isinstance(default, _Factory):
                specs.append((name, "object", dataclasses.field(default_factory=default.factory)))
            else:
                specs.append((name, "object", dataclasses.field(default=default)))
        twin = dataclasses.make_dataclass(
            cls.__name__, specs, frozen=getattr(cls, "__record_frozen__", True)
        )
        # make_dataclass is typed as returning a plain type, without the dataclass attributes
        fields = twin.__dataclass_fields__  # type: ignore[attr-defined]
        type.__setattr__(cls, "__dataclass_fields__", fields)
        return fields


def _values(self: Any) -> tuple[Any, ...]:
    return tuple([getattr(self, name) for name in self.__match_args__])


_repr_running: set[tuple[int, int]] = set()  # (id, thread) of reprs under way, as reprlib keeps


def _repr(self: Any) -> str:
    # A mutable record can hold itself: print "..." there, as dataclasses does (no reprlib:
    # an import for a case this small).
    mark = (id(self), get_ident())
    if mark in _repr_running:
        return "..."
    _repr_running.add(mark)
    try:
        fields = ", ".join([f"{name}={getattr(self, name)!r}" for name in self.__match_args__])
    finally:
        _repr_running.discard(mark)
    return f"{type(self).__qualname__}({fields})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        # mypy accepts NotImplemented from methods named __eq__ only; this becomes one.
        return NotImplemented  # type: ignore[no-any-return]
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for name, value in zip(self.__match_args__, state, strict=True):
        object.__setattr__(self, name, value)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")


def _frozen_delattr(self: object, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")


def _make_init(qualname: str, defaults: tuple[tuple[str, Any], ...]) -> Callable[..., None]:
    """One ``__init__`` for every record, reading its fields from ``defaults``.

    Not generated source: compiling one per class cost a cold start ~0.2 ms a class, more than
    this costs all the records a process will ever build.
    """
    names = tuple(name for name, _ in defaults)
    count = len(names)
    _set = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > count:
            raise TypeError(
                f"{qualname}() takes {count} positional arguments but {len(args)} were given"
            )
        for name, value in zip(names, args, strict=False):  # fewer args than fields
            _set(self, name, value)
        for name, default in defaults[len(args) :]:
            value = kwargs.pop(name, default) if kwargs else default
            if value is _MISSING:
                raise TypeError(f"{qualname}() missing required argument: {name!r}")
            if value.__class__ is _Factory:
                value = value.factory()
            _set(self, name, value)
        if kwargs:
            name = next(iter(kwargs))
            why = "multiple values for" if name in names else "an unexpected keyword"
            raise TypeError(f"{qualname}() got {why} argument {name!r}")

    __init__.__qualname__ = f"{qualname}.__init__"
    return __init__


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T] | None = None, *, frozen: bool = True) -> Any:
    """Turn the annotated class attributes of ``cls`` into a slotted record (frozen unless
    ``frozen=False``)."""
    if cls is None:
        return lambda c: record(c, frozen=frozen)
    for base in cls.__mro__[1:]:
        if "__record_defaults__" in base.__dict__:  # dataclasses would inherit its fields
            raise TypeError(
                f"@record {cls.__qualname__}: records do not inherit fields, and base "
                f"{base.__qualname__} is a record; repeat its fields in {cls.__qualname__} "
                "instead of subclassing it."
            )
    names = list(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 (no inspect: cost)
    defaults = [(n, cls.__dict__.get(n, _MISSING)) for n in names]
    before = None  # the last field with a default (no itertools.pairwise: an import)
    for name, default in defaults:
        if default is not _MISSING:
            before = name
        elif before is not None:  # as dataclasses refuses it
            raise TypeError(
                f"@record {cls.__qualname__}: field {name!r} without a default follows default "
                f"argument {before!r}; give {name!r} a default or move it before {before!r}."
            )
    ns = {
        k: v
        for k, v in cls.__dict__.items()
        if k not in names and k not in ("__dict__", "__weakref__")
    }
    ns["__slots__"] = tuple(names)
    ns["__match_args__"] = tuple(names)
    ns["__record_defaults__"] = tuple(defaults)
    ns["__record_frozen__"] = frozen
    ns["__dataclass_fields__"] = _LazyFields()

    ns["__init__"] = _make_init(cls.__qualname__, tuple(defaults))
    ns["__repr__"] = _repr
    ns["__eq__"] = _eq
    ns["__getstate__"] = _values
    ns["__setstate__"] = _setstate
    if frozen:
        ns["__hash__"] = _hash
        ns["__setattr__"] = _frozen_setattr
        ns["__delattr__"] = _frozen_delattr
    else:
        ns["__hash__"] = None  # mutable and comparable: unhashable, as dataclasses does
    meta: Callable[..., type[T]] = type(cls)  # cls's metaclass, as dataclasses keeps it
    new = meta(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = cls.__qualname__
    return new
