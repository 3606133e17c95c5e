"""The server freezes what start-up loaded (``gc.freeze``, issue 22): a full garbage collection
then scans only what requests made, not the modules, the app and its schemas again. Measured
under P3's write load: 50-77 ms per full collection before (every request in flight waited),
~1 ms after. Young collections then run every 20,000 allocations, not every 700 (a few
requests apart, each finding the requests in flight alive and promoting them): server CPU per
request under P3's load 6-10% lower. Checked on a real server process through ``/metrics``."""

from __future__ import annotations

import re

import httpx
from support.server import ServerProcess


def test_a_served_process_has_frozen_its_start_up_objects(server: ServerProcess) -> None:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^botwire_gc_frozen_objects (\S+)$", text, re.M)
    assert found, "botwire_gc_frozen_objects missing from /metrics"
    # modules, FastAPI's app and routes, pydantic's schemas: tens of thousands of objects
    assert float(found.group(1)) > 20_000, found.group(0)


def test_a_served_process_collects_its_young_generation_less_often(server: ServerProcess) -> None:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^botwire_gc_young_threshold (\S+)$", text, re.M)
    assert found, "botwire_gc_young_threshold missing from /metrics"
    assert float(found.group(1)) == 20_000, found.group(0)  # Python's default is 700
