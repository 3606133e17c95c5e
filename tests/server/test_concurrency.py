"""Concurrent writers through the HTTP API lose nothing (the original service kept 14 of 40)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from server.srv_helpers import key_url
from support.server import ServerProcess


def test_concurrent_appends_and_increments_are_all_applied(server: ServerProcess, ns: str) -> None:
    def work(i: int) -> tuple[int, int]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            a = http.patch(key_url(ns, "chat"), json={"append": [{"turn": i}]})
            b = http.patch(key_url(ns, "count"), json={"incr": 1})
            return a.status_code, b.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(work, range(40)))
    assert statuses == [(200, 200)] * 40
    with httpx.Client(base_url=server.url) as http:
        chat = http.get(key_url(ns, "chat")).json()["value"]
        assert sorted(m["turn"] for m in chat) == list(range(40))
        assert http.get(key_url(ns, "count")).json()["value"] == 40


def test_compare_and_set_race_has_exactly_one_winner(server: ServerProcess, ns: str) -> None:
    with httpx.Client(base_url=server.url) as http:
        v = http.put(key_url(ns, "k"), json={"value": 0}).json()["version"]

    def attempt(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            return http.put(
                key_url(ns, "k"), json={"value": i}, headers={"If-Match": f'"{v}"'}
            ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(attempt, range(16)))
    assert codes.count(200) == 1
    assert codes.count(412) == 15
