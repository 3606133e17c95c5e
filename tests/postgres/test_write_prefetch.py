"""A PostgreSQL write reads every key's entry ahead, with its namespace lock
(``Engine.write_prefetch``), and hands each read out once, when the plan asks for it. That is
only right while no statement the plan ran before changed that entry: batches that touch one
key several times (delete then set, append then pop, a refused op in a non-atomic batch, an
expired entry removed on load) must answer exactly as SQLite, which reads nothing ahead.

Hypothesis writes the batches; each runs against SQLite, the sync ``PostgresStore`` and the
server's event-loop writer, on fresh namespaces, with one fake clock; answers (versions and
times aside) and the keys' final values must be the same everywhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.answers import strip_answer

from botwire.store import Op, SQLiteStore
from botwire.testing import Clock
from botwire_server.storage.postgres import PostgresStore

pytestmark = pytest.mark.postgres

KEYS = ("a", "b", "c")
_value = st.integers(-5, 5).map(str)
_key = st.sampled_from(KEYS)
_ttl = st.one_of(st.none(), st.just(5.0))

OPS = st.one_of(
    st.builds(lambda k, v, t: Op("set", k, value=v, ttl=t), _key, _value, _ttl),
    st.builds(lambda k, v: Op("set", k, value=v, if_absent=True), _key, _value),
    st.builds(lambda k: Op("delete", k), _key),
    st.builds(
        lambda k, items, m, t: Op("append", k, items=tuple(items), max_len=m, ttl=t),
        _key,
        st.lists(_value, min_size=1, max_size=3),
        st.one_of(st.none(), st.just(2)),
        _ttl,
    ),
    st.builds(lambda k, by: Op("incr", k, by=by), _key, st.integers(-2, 3)),
    st.builds(lambda k: Op("pop", k), _key),
    st.builds(lambda k: Op("get", k), _key),
    st.builds(lambda k: Op("check", k, version=None), _key),
)
#: A script: batches (ops, atomic), each after the clock moved on by some seconds.
SCRIPTS = st.lists(
    st.tuples(st.lists(OPS, min_size=1, max_size=6), st.booleans(), st.sampled_from([0, 3, 6])),
    min_size=1,
    max_size=5,
)


def _strip(found: Any) -> Any:
    """An answer without what differs between stores: versions, times, messages (numbers)."""
    return strip_answer(found, ("message",))


def _error(exc: Exception, ns: str) -> list[str]:
    return [type(exc).__name__, re.sub(r"\d+", "N", str(exc).replace(ns, "NS"))]


class Targets:
    """SQLite, the sync PostgreSQL store and the event-loop writer, on one fake clock."""

    def __init__(self, tmp: Path, postgres_url: str) -> None:
        self.clock = Clock()
        self.sqlite = SQLiteStore(tmp / "oracle.db", clock=self.clock)
        self.pg = PostgresStore(postgres_url, clock=self.clock, async_writes=True)
        self.loop = asyncio.new_event_loop()
        self.writer = self.pg.async_reader()
        self.loop.run_until_complete(self.writer.open())

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.writer.close())
            self.loop.close()
        finally:
            self.pg.close()
            self.sqlite.close()

    def run(self, script: list[tuple[list[Op], bool, int]]) -> dict[str, Any]:
        """Each target's answers and final values for ``script``, on fresh namespaces."""
        tag = uuid.uuid4().hex[:10]
        runs = {
            "sqlite": lambda ns, ops, atomic: self.sqlite.batch(ns, ops, atomic=atomic),
            "postgres": lambda ns, ops, atomic: self.pg.batch(ns, ops, atomic=atomic),
            "event loop": lambda ns, ops, atomic: self.loop.run_until_complete(
                self.writer.batch(ns, ops, atomic=atomic)
            ),
        }
        out: dict[str, Any] = {}
        for name, run in runs.items():
            # Fresh namespaces: only the waits between batches matter, not the clock's start.
            ns = f"prefetch-{tag}-{name.replace(' ', '-')}"
            answers: list[Any] = []
            for ops, atomic, wait in script:
                self.clock.advance(wait)
                try:
                    answers.append(_strip(run(ns, ops, atomic)))
                except Exception as exc:  # the error is the answer
                    answers.append(_error(exc, ns))
            final = {}
            for key in KEYS:
                entry = self.sqlite.get(ns, key) if name == "sqlite" else self.pg.get(ns, key)
                final[key] = None if entry is None else [entry.value, entry.expires_at is None]
            out[name] = json.loads(json.dumps([answers, final]).replace(ns, "NS"))
        return out


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Targets]:
    t = Targets(tmp_path_factory.mktemp("prefetch"), postgres_url)
    yield t
    t.close()


def _check(targets: Targets, script: list[tuple[list[Op], bool, int]]) -> None:
    got = targets.run(script)
    assert got["postgres"] == got["sqlite"], script
    assert got["event loop"] == got["sqlite"], script


#: Batches that reach each way a prefetched entry could be stale, kept as explicit cases.
CASES: list[list[tuple[list[Op], bool, int]]] = [
    [
        (
            [
                Op("set", "a", value="1"),
                Op("delete", "a"),
                Op("set", "a", value="2", if_absent=True),
            ],
            True,
            0,
        )
    ],
    [
        (
            [Op("append", "a", items=("1", "2")), Op("pop", "a"), Op("append", "a", items=("3",))],
            True,
            0,
        )
    ],
    [([Op("incr", "a"), Op("incr", "a", by=2), Op("get", "a"), Op("incr", "a")], True, 0)],
    [
        (
            [
                Op("check", "a", version=None),
                Op("set", "a", value="1"),
                Op("check", "a", version=None),
            ],
            False,
            0,
        )
    ],
    # A refused op in a non-atomic batch is rolled back; the next op on its key reads afresh.
    [
        ([Op("set", "a", value='"s"')], True, 0),
        ([Op("append", "a", items=("1",)), Op("set", "a", value="1"), Op("incr", "a")], False, 0),
    ],
    # An expired entry is removed when loaded: the next op on the key finds nothing.
    [
        ([Op("set", "a", value="1", ttl=5.0), Op("append", "b", items=("1",), ttl=5.0)], True, 0),
        (
            [Op("incr", "a"), Op("incr", "a"), Op("pop", "b"), Op("append", "b", items=("2",))],
            True,
            6,
        ),
    ],
    # Several keys in one write, as a LangGraph checkpoint is saved.
    [
        (
            [Op("set", "a", value="1"), Op("set", "b", value="2"), Op("append", "c", items=("3",))],
            True,
            0,
        )
    ],
]


@pytest.mark.parametrize("script", CASES, ids=range(len(CASES)))
def test_batches_touching_a_key_twice(targets: Targets, script: Any) -> None:
    _check(targets, script)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=SCRIPTS)
def test_random_batches_answer_as_sqlite(targets: Targets, script: Any) -> None:
    _check(targets, script)


@pytest.mark.parametrize("kind", ["check", "get"])
@pytest.mark.parametrize("atomic", [False, True])
def test_a_read_batch_that_drops_an_expired_key_answers_as_sqlite(
    targets: Targets, kind: str, atomic: bool
) -> None:
    """Found by the random batches: a batch of reads that finds an expired key drops it and
    adds the change to the statistics (``plan_add``), whose statement named its columns bare:
    PostgreSQL refused it as ambiguous, so the read failed."""
    _check(
        targets,
        [([Op("set", "a", value="0", ttl=5.0)], False, 0), ([Op(kind, "a")], atomic, 6)],
    )
