"""Quotas under concurrency: many writers racing at the writes/day and bytes boundaries, on one
server (SQLite) and across two replicas sharing one PostgreSQL database. The limit is exact —
never one write over, counted from the data itself and not only from status codes — and every
writes/day 429 carries ``Retry-After`` = seconds to the next UTC midnight (±2 s).

The servers run ``--testing-clock`` and are moved to just after noon tomorrow (UTC) first, so a
run that straddles a real midnight cannot reset the day mid-test."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from reliability.helpers import Figures
from support.server import running_server

from botwire._wire import key_path

DAY = 86400
WRITERS = 8


WRITES_LIMIT, BYTES_LIMIT = 60, 24_000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[str], float]]:
    """URLs of the server(s) and the testing clock's offset (the same on every replica); both
    limits are set, each test uses its own namespace and reaches only its own limit."""
    args = (
        "--no-access-log",
        "--writes-per-day",
        str(WRITES_LIMIT),
        "--max-namespace-bytes",
        str(BYTES_LIMIT),
    )
    if request.param == "sqlite":
        with running_server(
            *args, database=tmp_path_factory.mktemp("q") / "q.db", testing_clock=True
        ) as s:
            urls = [s.url]
            yield urls, _to_noon(urls)
    else:
        from support.postgres import new_database

        dsn = new_database("botwire_reliability_quotas")
        with (
            running_server(*args, database=dsn, testing_clock=True) as a,
            running_server(*args, database=dsn, testing_clock=True) as b,
        ):
            urls = [a.url, b.url]
            yield urls, _to_noon(urls)


def _to_noon(urls: list[str]) -> float:
    now = time.time()
    advance = (math.floor(now / DAY) + 1) * DAY + DAY / 2 - now
    offsets = [
        httpx.post(f"{u}/_testing/clock", json={"advance": advance}).json()["offset"] for u in urls
    ]
    assert max(offsets) - min(offsets) < 1
    return float(offsets[0])


def _midnight_in(offset: float) -> float:
    now = time.time() + offset
    return (math.floor(now / DAY) + 1) * DAY - now


def _race(
    urls: list[str], ns: str, per_writer: int, op_for: Any
) -> tuple[Counter[int], list[httpx.Response]]:
    """``WRITERS`` threads, each with its own connection to one of ``urls`` (round robin),
    released together by a barrier, each making ``per_writer`` calls."""
    statuses: Counter[int] = Counter()
    refused: list[httpx.Response] = []
    lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            with httpx.Client(base_url=urls[w % len(urls)], timeout=30) as c:
                barrier.wait(30)
                for i in range(per_writer):
                    r = op_for(c, ns, w, i)
                    with lock:
                        statuses[r.status_code] += 1
                        if r.status_code != 200:
                            refused.append(r)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return statuses, refused


def _mixed(c: httpx.Client, ns: str, w: int, i: int) -> httpx.Response:
    kind = (w + i) % 4
    if kind == 0:
        return c.put(key_path(ns, f"s-{w}-{i}"), json={"value": i})
    if kind == 1:
        return c.patch(key_path(ns, "list"), json={"append": [f"{w}:{i}"]})
    if kind == 2:
        return c.patch(key_path(ns, "counter"), json={"incr": 1})
    return c.post(
        f"/v1/namespaces/{ns}/batch", json={"ops": [{"op": "set", "key": f"b-{w}-{i}", "value": i}]}
    )


def test_writes_per_day_is_exact_under_concurrency(
    servers: tuple[list[str], float],
    ns: str,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    backend = request.node.callspec.params["servers"]
    limit, per_writer = WRITES_LIMIT, 15  # 120 attempts race for 60 writes
    urls, offset = servers
    statuses, refused = _race(urls, ns, per_writer, _mixed)
    bad_retry: list[str] = []
    for r in refused:
        err = r.json()["error"]
        assert r.status_code == 429 and err["code"] == "quota_exceeded", r.text
        assert err["quota"] == "writes_per_day"
        retry = int(r.headers["retry-after"])
        if abs(retry - _midnight_in(offset)) > 2:
            bad_retry.append(f"{retry} vs {_midnight_in(offset):.0f}")
    with httpx.Client(base_url=urls[0]) as c:
        usage = c.get(f"/v1/namespaces/{ns}").json()
        keys = [k["key"] for k in c.get(f"/v1/namespaces/{ns}/keys").json()["keys"]]
        items = c.get(key_path(ns, "list")).json().get("value", [])
        counter = c.get(key_path(ns, "counter")).json().get("value", 0)
    applied = sum(1 for k in keys if k.startswith(("s-", "b-"))) + len(items) + counter
    Figures(
        f"quotas/writes-per-day/{backend}",
        attempted=WRITERS * per_writer,
        acknowledged=statuses[200],
        extra={
            "limit": limit,
            "applied_from_data": applied,
            "refused_429": statuses[429],
            "replicas": len(urls),
            "bad_retry_after": len(bad_retry),
            "over_limit": max(0, applied - limit),
        },
    ).record(record_property)
    assert statuses[200] == limit and applied == limit, (statuses, applied)
    assert statuses[429] == WRITERS * per_writer - limit
    assert usage["writes_today"] == limit
    assert not bad_retry, bad_retry


def test_namespace_bytes_limit_is_exact_under_concurrency(
    servers: tuple[list[str], float],
    ns: str,
    request: pytest.FixtureRequest,
    record_property: Any,
) -> None:
    """Writers race to fill a namespace with distinct ~1 KB entries; it ends at most full, and
    too full to take one more entry; appends to one shared list race the same boundary."""
    backend = request.node.callspec.params["servers"]
    limit = BYTES_LIMIT
    urls = servers[0]
    value = "x" * 1000

    def op(c: httpx.Client, ns_: str, w: int, i: int) -> httpx.Response:
        if i % 2:
            return c.patch(key_path(ns_, "shared-list"), json={"append": [value[:500]]})
        return c.put(key_path(ns_, f"k-{w:02d}-{i:03d}"), json={"value": value})

    statuses, refused = _race(urls, ns, 12, op)
    for r in refused:
        err = r.json()["error"]
        assert r.status_code == 429 and err["code"] == "quota_exceeded", r.text
        assert err["quota"] in ("max_namespace_bytes", "namespace_bytes"), err
    with httpx.Client(base_url=urls[0]) as c:
        usage = c.get(f"/v1/namespaces/{ns}").json()
        # the smallest further write is refused: the namespace really is full
        probe = c.patch(key_path(ns, "shared-list"), json={"append": [value[:500]]})
    used = usage["bytes"]
    Figures(
        f"quotas/namespace-bytes/{backend}",
        attempted=WRITERS * 12,
        acknowledged=statuses[200],
        extra={
            "limit": limit,
            "bytes_used": used,
            "refused_429": statuses[429],
            "replicas": len(urls),
            "over_limit": max(0, used - limit),
        },
    ).record(record_property)
    assert used <= limit, usage
    assert statuses[429] > 0 and probe.status_code == 429
    assert limit - used < 1100  # not refused early either: less than one more entry was free
