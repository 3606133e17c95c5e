"""Issue 13 item 5, long lists at the limit (100,000 items, ~15 MB): reading one whole, trimming
one to a single item (``append(max_len=1)``) and deleting one, each while another connection
probes ``/healthz`` and another tenant writes. Figures are printed (``FIGURE ...``), never
asserted on; the assertions are about answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.probe import BACKENDS, HealthProbe, RSSWatch, serving
from support.server import ServerProcess

from botwire._wire import key_path

JSON = {"Content-Type": "application/json"}
ITEMS, PER_APPEND = 100_000, 10_000  # the default --max-list-length and --max-append-items
ITEM = b'"' + b"m" * 150 + b'"'  # 100k of them: 15.2 MB, under the 16 MiB response budget


class WriterProbe:
    """Another tenant's ``PUT`` in a loop on its own connection: how long the store is held."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60, headers=JSON) as http:
            i = 0
            while not self._stop.is_set():
                start = time.perf_counter()
                http.put(key_path("bystander", "k"), json={"value": i})
                self.latencies.append(time.perf_counter() - start)
                i += 1
                self._stop.wait(0.01)

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=0.0) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    def __enter__(self) -> WriterProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    with serving(request.param, tmp_path, "--no-access-log") as srv:
        yield srv


def _fill(http: httpx.Client, url: str) -> None:
    chunk = b'{"append":[' + b",".join([ITEM] * PER_APPEND) + b"]}"
    for _ in range(ITEMS // PER_APPEND):
        assert http.patch(url, content=chunk).status_code == 200


def _measure(server: ServerProcess, name: str, action) -> None:  # type: ignore[no-untyped-def]
    with (
        HealthProbe(server.url) as probe,
        WriterProbe(server.url) as writer,
        RSSWatch(server.proc.pid) as rss,
    ):
        time.sleep(0.2)  # a baseline before the action
        start = time.perf_counter()
        action()
        took = (time.perf_counter() - start) * 1000
        time.sleep(0.2)
    backend = "postgres" if "dbname=" in " ".join(server.proc.args) else "sqlite"  # type: ignore[arg-type]
    print(
        f"\nFIGURE {name} [{backend}]: took {took:.0f} ms; healthz p99 {probe.p99_ms:.1f} ms, "
        f"max {probe.max_ms:.1f} ms over {len(probe.latencies)} probes; another tenant's PUT "
        f"max {writer.max_ms:.1f} ms, p99 {writer.p99_ms:.1f} ms over {len(writer.latencies)}; "
        f"RSS +{rss.growth_mib:.0f} MiB"
    )
    assert probe.failures == 0


def test_long_list_read_trim_and_delete(server: ServerProcess) -> None:
    ns, key = "lists", "history"
    url = key_path(ns, key)
    with httpx.Client(base_url=server.url, timeout=120, headers=JSON) as http:
        _fill(http, url)

        answer = b""

        def read() -> None:
            # decoded after the measurement: decoding 15 MB of JSON holds this process's GIL
            # for ~0.2 s, which the probes' threads (in this process) would count as latency
            nonlocal answer
            got = http.get(url)
            assert got.status_code == 200
            answer = got.content

        def trim() -> None:
            r = http.patch(url, content=b'{"append":[1],"max_len":1}')
            assert r.status_code == 200 and r.json()["length"] == 1

        def delete() -> None:
            assert http.delete(url).json() == {"deleted": True}

        _measure(server, f"GET of a {ITEMS}-item list (15 MB)", read)
        assert len(httpx.Response(200, content=answer).json()["value"]) == ITEMS
        _measure(server, f"append(max_len=1) trimming {ITEMS} items", trim)
        assert http.get(url).json()["value"] == [1]
        http.delete(url)
        _fill(http, url)
        _measure(server, f"DELETE of a {ITEMS}-item list", delete)
        assert http.get(url).status_code == 404
