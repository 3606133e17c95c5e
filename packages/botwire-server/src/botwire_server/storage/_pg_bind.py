"""How a write's parameters reach PostgreSQL (``_pg_write.AsyncPgTx``): as SQL literals in a
simple query (:func:`literals`, behind a transaction-mode pooler) or as a prepared statement's
arguments in text form (:func:`arguments`, bound in a pipeline), each as psycopg writes them
(``tests/postgres/test_write_literals.py``, ``test_write_pipeline.py``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from psycopg import abc
from psycopg.adapt import PyFormat

from ._pg_common import pg_sql

__all__ = ["arguments", "execute_template", "literals", "template"]

_INF = float("inf")


def literals(
    tx: abc.Transformer,
    params: Sequence[Any],
    memo: dict[tuple[type, Any], bytes],
    floats: dict[float, bytes] | None = None,
) -> tuple[bytes, ...]:
    """``params`` as SQL literals, as ``ClientCursor.mogrify`` writes them (``None`` is NULL),
    each value's written once per transaction (``memo``, the transaction's): measured, a keyed
    chat append's 42 literals (22 distinct) cost 38 µs of the server's CPU, 27 with it.
    Ints are written directly (cheaper than a lookup), finite floats as :func:`arguments`
    writes them (``floats``, the transaction's); the rest is known by its type and value, so
    ``True`` and ``1`` stay apart; NaN (equal to nothing) and unhashable values are written
    each time."""
    out: list[bytes] = []
    for p in params:
        cls = p.__class__
        if cls is int or (cls is float and -_INF < p < _INF):
            # psycopg's own literal for these (tests/postgres/test_write_literals.py holds
            # them to as_literal's), written 4x as fast: most of a write's literals are ints
            lit = b"%d" % p if cls is int else _float_text(p, floats)
            out.append(b" " + lit if lit[0] == 45 else lit)  # "-": " -1", as psycopg writes it
            continue
        if p is None:
            out.append(b"NULL")
            continue
        key = (cls, p)
        try:
            known = memo.get(key)
        except TypeError:  # unhashable (a list, for an array): written each time
            out.append(tx.as_literal(p))
            continue
        if known is None:
            known = tx.as_literal(p)
            if p == p:  # finite floats, -0.0 among them, never get here
                memo[key] = known
        out.append(known)
    return tuple(out)


def arguments(
    tx: abc.Transformer, params: Sequence[Any], floats: dict[float, bytes] | None = None
) -> list[bytes | None]:
    """``params`` as a prepared statement's arguments in text form (``None`` is NULL), as
    psycopg's text dumpers write them (``tests/postgres/test_write_pipeline.py`` holds them to
    it): strings, ints and finite floats directly, the rest (bytes, booleans, lists, a string
    holding NUL, which psycopg refuses) by psycopg's dumper of their type. PostgreSQL reads
    each with the input function of the type ``PREPARE`` inferred for it.

    ``floats`` (a transaction's) keeps each float's text once written: a write repeats its
    time in most statements, and a float's shortest ``repr`` costs ~4,800 instructions where
    the lookup costs a few hundred (a LangGraph ``put`` writes 11 floats, ~2 distinct; counted
    by ``benchmarks/instructions.py``). Zero is written each time: ``0.0 == -0.0``."""
    out: list[bytes | None] = []
    for p in params:
        cls = p.__class__
        if cls is str and "\x00" not in p:
            out.append(p.encode())
        elif cls is int:
            out.append(b"%d" % p)
        elif cls is float and -_INF < p < _INF:
            out.append(_float_text(p, floats))
        elif p is None:
            out.append(None)
        else:
            dumped = tx.get_dumper(p, PyFormat.TEXT).dump(p)
            out.append(None if dumped is None else bytes(dumped))
    return out


def _float_text(p: float, floats: dict[float, bytes] | None) -> bytes:
    """A finite float's shortest ``repr``, kept in ``floats`` once written (zero never is:
    ``0.0 == -0.0`` as a key)."""
    if floats is None or not p:
        return repr(p).encode()
    text = floats.get(p)
    if text is None:
        text = floats[p] = repr(p).encode()
    return text


@functools.lru_cache(maxsize=512)
def template(sql: str) -> bytes:
    """The engine's statement (``?`` placeholders) as a ``%``-template of its literals."""
    return pg_sql(sql).encode()


@functools.lru_cache(maxsize=256)
def execute_template(name: str, count: int) -> bytes:
    """``EXECUTE name(%s, ...)``: a prepared statement's call, its arguments bound client-side
    as the plain statement's would be (each is coerced to the type PREPARE inferred)."""
    return f"EXECUTE {name}({', '.join(['%s'] * count)})".encode()
