"""The SQL engine split by responsibility (issue 21, item 4): the operations are a table, the
checks the engine repeats are the client's own, and no module outgrows the contract's size.

The engine's checks matter for requests that never went through a client (raw HTTP, a
third-party client): such an op must be refused with the very message the client gives, and
nothing stored may change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from botwire import InvalidArgument, Memory
from botwire._common import _check_ttl, check_incr_by, check_max_len
from botwire._types import Op
from botwire.store import SQLiteStore
from botwire.store._sqlops import OPS, WRITES

ROOT = Path(__file__).resolve().parents[2]
ENGINE_MODULES = [
    *sorted((ROOT / "packages/botwire-core/src/botwire/store").glob("_sql*.py")),
    *sorted((ROOT / "packages/botwire-server/src/botwire_server/storage").glob("*.py")),
]


def test_every_op_kind_has_exactly_one_handler() -> None:
    kinds = {"get", "set", "delete", "append", "incr", "pop", "check"}  # _types.OpKind
    assert set(OPS) == kinds
    assert kinds >= WRITES == {"set", "append", "incr", "pop"}


def test_an_unknown_op_is_refused_by_name(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        with pytest.raises(InvalidArgument, match=r"unknown operation 'mutate' on key 'k'"):
            store.batch("ns", [Op("mutate", "k")])  # type: ignore[arg-type]
        # non-atomic: recorded per op, the others applied
        results = store.batch(
            "ns",
            [Op("__init__", "k"), Op("set", "k", value="1")],  # type: ignore[arg-type]
            atomic=False,
        )
        assert results[0]["error"]["code"] == "invalid_argument"
        assert store.get("ns", "k").value == 1  # type: ignore[union-attr]
    finally:
        store.close()


# (raw op the engine receives, the client's check that refuses the same argument)
RAW: list[tuple[str, Op, Any]] = [
    ("max_len=0", Op("append", "k", items=("1",), max_len=0), lambda: check_max_len("ns", "k", 0)),
    (
        "max_len=True",
        Op("append", "k", items=("1",), max_len=True),
        lambda: check_max_len("ns", "k", True),
    ),
    (
        "ttl=nan",
        Op("set", "k", value="2", ttl=float("nan")),
        lambda: _check_ttl("ns", "k", float("nan")),
    ),
    ("ttl=-1", Op("append", "k", items=("1",), ttl=-1), lambda: _check_ttl("ns", "k", -1)),
    (
        "ttl=10**400",
        Op("set", "k", value="2", ttl=10**400),  # math.isfinite would overflow
        lambda: _check_ttl("ns", "k", 10**400),
    ),
    ("by=inf", Op("incr", "k", by=float("inf")), lambda: check_incr_by("ns", "k", float("inf"))),
    ("by=True", Op("incr", "k", by=True), lambda: check_incr_by("ns", "k", True)),
    ("by='1'", Op("incr", "k", by="1"), lambda: check_incr_by("ns", "k", "1")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("raw", "client_check"), [(op, check) for _, op, check in RAW], ids=[name for name, _, _ in RAW]
)
def test_the_engine_refuses_a_raw_op_with_the_clients_message(
    tmp_path: Path, raw: Op, client_check: Any
) -> None:
    with pytest.raises(InvalidArgument) as client:
        client_check()
    store = SQLiteStore(tmp_path / "s.db")
    try:
        memory = Memory("ns", store=store)
        memory.set("k", [7])
        before = memory.entry("k")
        with pytest.raises(InvalidArgument) as engine:
            store.batch("ns", [raw])
        assert str(engine.value) == str(client.value)
        assert "'k'" in str(engine.value) and "'ns'" in str(engine.value)
        assert memory.entry("k") == before  # nothing stored changed
        assert store.usage("ns").keys == 1
    finally:
        store.close()


def test_engine_and_storage_modules_stay_small() -> None:
    """The contract (docs/design.md): source files of ~600 lines at most."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in ENGINE_MODULES}
    print(f"FIGURE module lines {sizes}")
    assert sizes["_sql.py"] and all(n <= 600 for n in sizes.values()), sizes
    assert len(ENGINE_MODULES) >= 8


def test_a_version_block_reserved_in_an_undone_op_is_not_used(tmp_path: Path) -> None:
    """SQLite's hook ``rollback_savepoint`` (was: the Tx recognising ``ROLLBACK`` text): an op
    of a non-atomic batch that reserved a version block and was undone must not leave the block
    in use, or another connection is later handed the same versions."""
    from botwire.store import Limits

    path = tmp_path / "v.db"
    a = SQLiteStore(path, limits=Limits(max_keys=1))
    b = SQLiteStore(path)
    try:
        a.batch("ns", [Op("set", "a", value="1")])
        b.batch("other", [Op("set", "x", value="1")])  # a's block is stale now
        # op 0 reserves a new block, fails the quota and is rolled back to its savepoint
        results = a.batch(
            "ns", [Op("set", "b", value="1"), Op("set", "a", value="2")], atomic=False
        )
        assert results[0]["error"]["code"] == "quota_exceeded"
        in_batch = int(results[1]["version"])
        later = int(b.batch("other", [Op("set", "y", value="1")])[0]["version"])
        print(f"FIGURE versions: batch {in_batch}, later write on another connection {later}")
        assert later > in_batch
    finally:
        a.close()
        b.close()
