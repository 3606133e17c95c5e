"""The engine's sans-I/O plans (``botwire.store._sqlplan``, issue 22): a plan yields requests
and receives their results; a failed statement is raised *inside* the plan, at the ``yield``
that asked for it, as a direct call would have raised there (the engine's per-op savepoints of
a non-atomic batch catch a refused op's error where it happened)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from botwire import Conflict, InvalidArgument
from botwire.store import Op, SQLiteStore
from botwire.store._sqlplan import SAVEPOINT, Plan, drive


class RecordingTx:
    """A Tx that records its calls; ``fail`` names a statement text that raises."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.calls.append(("one", sql, tuple(params)))
        if sql == self.fail:
            raise Conflict("botwire: refused by the database", namespace="ns", key="k")
        return (len(self.calls),)

    def savepoint(self) -> None:
        self.calls.append(("savepoint",))


def test_results_go_back_into_the_plan_and_its_value_is_returned() -> None:
    def plan() -> Plan[int]:
        yield SAVEPOINT
        first = yield ("one", "SELECT 1", (1,))
        second = yield ("one", "SELECT 2", ())
        version = yield ("version",)
        return int(first[0]) + int(second[0]) + int(version)

    tx = RecordingTx()
    assert drive(tx, plan(), lambda t: 100) == 2 + 3 + 100  # type: ignore[arg-type]
    assert tx.calls == [("savepoint",), ("one", "SELECT 1", (1,)), ("one", "SELECT 2", ())]


def test_a_failed_statement_is_raised_where_the_plan_asked_for_it() -> None:
    seen: list[str] = []

    def plan() -> Plan[str]:
        try:
            yield ("one", "BAD", ())
        except Conflict as exc:  # caught inside the plan, as a call would be
            seen.append(str(exc))
        row = yield ("one", "GOOD", ())
        return f"went on: {row[0]}"

    tx = RecordingTx(fail="BAD")
    assert drive(tx, plan()) == "went on: 2"  # type: ignore[arg-type]
    assert seen == ["botwire: refused by the database"]


def test_an_uncaught_failure_propagates_to_the_caller() -> None:
    def plan() -> Plan[None]:
        yield ("one", "BAD", ())
        raise AssertionError("not reached")

    with pytest.raises(Conflict, match="refused by the database"):
        drive(RecordingTx(fail="BAD"), plan())  # type: ignore[arg-type]


def test_a_version_needs_an_allocator() -> None:
    def plan() -> Plan[int]:
        return (yield ("version",))

    with pytest.raises(AssertionError, match="allocates no versions"):
        drive(RecordingTx(), plan())  # type: ignore[arg-type]


def test_engine_apply_is_its_plan_driven(tmp_path: Path) -> None:
    """``Engine.apply`` (sync) and ``plan_apply`` driven by hand give the same answers."""
    store = SQLiteStore(tmp_path / "p.db")
    try:
        store.batch("ns", [Op("set", "k", value="1")])
        plan = store.engine.plan_apply(
            "ns",
            [Op("incr", "k"), Op("set", "k", value="9", if_absent=True)],
            atomic=False,
            idempotency_key=None,
            fingerprint=None,
            now=store.clock(),
        )
        requests: list[str] = []
        with store._lock:
            conn = store._conn
            store._begin(conn)
            try:
                result: Any = None
                while True:
                    try:
                        request = plan.send(result)
                    except StopIteration as stop:
                        answers = stop.value
                        break
                    requests.append(request[0])
                    if request[0] == "version":
                        result = store.engine.next_version(store._tx)
                    else:
                        result = getattr(store._tx, request[0])(*request[1:])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        assert answers[0]["value"] == 2
        assert answers[1]["error"]["code"] == "conflict"
        assert "savepoint" in requests and "rollback_savepoint" in requests
        assert store.get("ns", "k").value == 2  # type: ignore[union-attr]
        with pytest.raises(InvalidArgument, match="unknown operation"):
            store.batch("ns", [Op("nope", "k")])  # type: ignore[arg-type]
    finally:
        store.close()
