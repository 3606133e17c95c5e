"""N processes x M appends to one key, and N processes x M ``update()`` read-modify-writes of one
counter: through the embedded store (one SQLite file), one server on SQLite, and two server
replicas on one PostgreSQL database (writers split across the replicas).

Nothing may be lost or duplicated and each writer's items keep their order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import Figures, check_order, read_acks, scale, wait_all, workers
from support.server import running_server

from botwire import Memory

BACKENDS = ["embedded", "server-sqlite", "replicas-postgres"]


@pytest.fixture(scope="module", params=BACKENDS)
def urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Where the writers point: one SQLite file, one server, or two replicas on PostgreSQL
    (shared by the tests of this module, each in its own namespace)."""
    backend = request.param
    if backend == "embedded":
        yield [f"sqlite:///{tmp_path_factory.mktemp('embedded')}/shared.db"]
    elif backend == "server-sqlite":
        with running_server(
            "--no-access-log", database=tmp_path_factory.mktemp("srv") / "srv.db"
        ) as s:
            yield [s.url]
    else:
        from support.postgres import new_database

        dsn = new_database("botwire_reliability_conc")
        with (
            running_server("--no-access-log", database=dsn) as a,
            running_server("--no-access-log", database=dsn) as b,
        ):
            yield [a.url, b.url]


def _run(
    urls: list[str], mode: str, n: int, m: int, tmp_path: Path, ns: str
) -> tuple[list[Any], Any, list[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    start = tmp_path / "go"
    specs = [
        {
            "wid": f"w{i}",
            "url": urls[i % len(urls)],
            "ns": ns,
            "key": "k",
            "mode": mode,
            "count": m,
            "acks": str(tmp_path / f"acks-{i}"),
            "start_file": str(start),
        }
        for i in range(n)
    ]
    with workers(specs) as procs:
        start.touch()  # released together
        wait_all(procs, timeout=240)
    final = Memory(ns, url=urls[-1]).get("k")
    acks = [line for i in range(n) for line in read_acks(tmp_path / f"acks-{i}")]
    return acks, final, [s["wid"] for s in specs]


def _appends(
    urls: list[str],
    n: int,
    m: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    ns: str,
    record_property: Any,
) -> None:
    backend = request.node.callspec.params["urls"]
    acks, final, writers = _run(urls, "append", n, m, tmp_path, ns)
    assert isinstance(final, list)
    lost, duplicated = check_order(final, writers, m)
    fig = Figures(
        f"concurrency/append/{backend}",
        attempted=n * m,
        acknowledged=sum(1 for a in acks if a[0] == "a"),
        lost=lost,
        duplicated=duplicated,
        extra={"processes": n, "per_process": m},
    )
    fig.record(record_property)
    assert (lost, duplicated) == (0, 0)
    assert len(final) == n * m == fig.acknowledged


def _updates(
    urls: list[str],
    n: int,
    m: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    ns: str,
    record_property: Any,
) -> None:
    backend = request.node.callspec.params["urls"]
    acks, final, writers = _run(urls, "update", n, m, tmp_path, ns)
    total = final["total"]
    fig = Figures(
        f"concurrency/update/{backend}",
        attempted=n * m,
        acknowledged=sum(1 for a in acks if a[0] == "u"),
        lost=max(0, n * m - total),
        duplicated=max(0, total - n * m),
        extra={"processes": n, "per_process": m},
    )
    fig.record(record_property)
    assert total == n * m == fig.acknowledged
    assert all(final[w] == m - 1 for w in writers)  # each writer's last update is its last


def test_processes_append_to_one_key(
    urls: list[str], tmp_path: Path, ns: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    _appends(urls, 4, 60, tmp_path, request, ns, record_property)


def test_processes_update_one_counter(
    urls: list[str], tmp_path: Path, ns: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    _updates(urls, 4, 25, tmp_path, request, ns, record_property)


def test_update_under_heavy_contention(
    urls: list[str], tmp_path: Path, ns: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    """Eight processes on one key: without a backoff between lost races, one writer could lose
    64 in a row and give up (found by the long variant)."""
    _updates(urls, 8, 100, tmp_path, request, ns, record_property)


@pytest.mark.slow
def test_processes_append_and_update_long(
    urls: list[str], tmp_path: Path, ns: str, request: pytest.FixtureRequest, record_property: Any
) -> None:
    n, m = scale(4, 8, request), scale(60, 400, request)
    _appends(urls, n, m, tmp_path / "a", request, ns + "-a", record_property)
    _updates(urls, n, m // 4, tmp_path / "u", request, ns + "-u", record_property)
