"""Issue 13 item 9, the versions side channel. Decision (docs/design.md §2, "Versions and what
they reveal"): versions stay store-wide, so a tenant can count how many writes the whole store
made between two of its own. This test measures that leak and pins what the decision keeps:
versions never repeat, not even after delete + recreate of the key or the namespace (no ABA in
compare-and-set), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.probe import BACKENDS, serving

from botwire._wire import key_path


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions_are_store_wide_and_never_repeat(backend: str, tmp_path: Path) -> None:
    with (
        serving(backend, tmp_path, "--no-access-log") as server,
        httpx.Client(base_url=server.url) as http,
    ):
        a = http.put(key_path("tenant-a", "k"), json={"value": 1}).json()["version"]
        for i in range(37):  # another tenant's writes in between
            http.put(key_path("tenant-b", f"k{i}"), json={"value": i})
        b = http.put(key_path("tenant-a", "k"), json={"value": 2}).json()["version"]
        print(
            f"\nFIGURE [{backend}] tenant-a's version moved {a} -> {b} across 37 writes of "
            f"tenant-b: the leak is the count of other writes ({b - a - 1}), not their "
            "content, keys or namespaces"
        )
        assert b > a
        seen = {a, b}
        for _ in range(3):
            http.delete(key_path("tenant-a", "k"))
            assert http.delete("/v1/namespaces/tenant-a").status_code == 200
            v = http.put(
                key_path("tenant-a", "k"), json={"value": 3}, headers={"If-None-Match": "*"}
            ).json()["version"]
            assert v not in seen and v > max(seen)  # a stale If-Match can never match again
            seen.add(v)
        stale = http.put(
            key_path("tenant-a", "k"), json={"value": 4}, headers={"If-Match": f'"{a}"'}
        )
        assert stale.status_code == 412
